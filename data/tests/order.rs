//! The sampling order: epochs are permutations, batches are full, resuming is exact.

use data::{BatchOrder, OrderState};

#[test]
fn resuming_after_k_batches_gives_the_uninterrupted_batches() {
    for (n, b) in [(10usize, 3usize), (7, 7), (5, 12), (1000, 64), (1, 1)] {
        let mut reference = BatchOrder::new(n, b, 42);
        let want: Vec<Vec<usize>> = (0..40).map(|_| reference.next_batch()).collect();
        for k in [0usize, 1, 2, 3, 7, 13, 39] {
            let mut order = BatchOrder::new(n, b, 42);
            for _ in 0..k {
                order.next_batch();
            }
            // Through JSON, as in a checkpoint.
            let json = serde_json::to_string(&order.state()).unwrap();
            let state: OrderState = serde_json::from_str(&json).unwrap();
            assert_eq!(state.batches, k as u64);
            let mut resumed = BatchOrder::resume(n, b, state).unwrap();
            for (i, w) in want.iter().enumerate().skip(k) {
                assert_eq!(
                    &resumed.next_batch(),
                    w,
                    "n={n} b={b}: batch {i} after resuming at {k}"
                );
            }
        }
    }
}

#[test]
fn every_epoch_is_a_permutation_and_batches_are_always_full() {
    let (n, b) = (10, 4);
    let mut order = BatchOrder::new(n, b, 7);
    let flat: Vec<usize> = (0..25)
        .flat_map(|_| {
            let batch = order.next_batch();
            assert_eq!(batch.len(), b);
            batch
        })
        .collect();
    // 100 indices = 10 epochs; each epoch's 10 indices are a permutation of 0..10.
    let mut epochs = Vec::new();
    for e in 0..10 {
        let mut chunk = flat[e * n..(e + 1) * n].to_vec();
        epochs.push(chunk.clone());
        chunk.sort();
        assert_eq!(chunk, (0..n).collect::<Vec<_>>(), "epoch {e}");
    }
    assert!(
        epochs.windows(2).any(|w| w[0] != w[1]),
        "epochs are reshuffled"
    );
    assert_eq!(order.epoch(), 9);
    assert!((order.epochs_done() - 10.0).abs() < 1e-12);
}

#[test]
fn seeds_give_different_deterministic_orders() {
    let run = |seed| {
        let mut o = BatchOrder::new(100, 10, seed);
        (0..5).map(|_| o.next_batch()).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn resume_refuses_a_different_dataset_or_batch_size() {
    let mut o = BatchOrder::new(100, 10, 0);
    o.next_batch();
    let s = o.state();
    let e = BatchOrder::resume(99, 10, s.clone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("100 windows in batches of 10") && e.contains("99 windows"),
        "{e}"
    );
    assert!(BatchOrder::resume(100, 11, s.clone()).is_err());
    let bad = OrderState { position: 101, ..s };
    assert!(BatchOrder::resume(100, 10, bad).is_err());
}

#[test]
fn degenerate_orders_do_not_panic() {
    assert!(BatchOrder::new(0, 4, 0).next_batch().is_empty());
    assert!(BatchOrder::new(4, 0, 0).next_batch().is_empty());
}
