//! The engine itself: accumulation, no-grad, and its error cases.

use autograd::{Tape, Var};
use tensor::{DType, Device, Tensor};

fn t(v: Vec<f64>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(v, dims.to_vec(), Device::Cpu).unwrap()
}

#[test]
fn gradients_accumulate_where_a_value_is_used_twice() {
    let tape = Tape::new();
    let x = tape.var(t(vec![1.0, -2.0, 3.0], &[3]));
    // y = Σ (x·x + 3x) → dy/dx = 2x + 3
    let y = x
        .mul(&x)
        .unwrap()
        .add(&x.mul_scalar(3.0).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let g = y.backward().unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![5.0, -1.0, 9.0]
    );
}

#[test]
fn gradients_reach_only_tracked_leaves() {
    let tape = Tape::new();
    let w = tape.var(t(vec![2.0, 3.0], &[1, 2]));
    let unused = tape.var(t(vec![1.0], &[1]));
    let c = Var::constant(t(vec![4.0, 5.0], &[2, 1]));
    let y = w.matmul(&c).unwrap().sum_all().unwrap(); // 2·4 + 3·5
    assert_eq!(y.value().to_scalar::<f64>().unwrap(), 23.0);
    let g = y.backward().unwrap();
    assert_eq!(g.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![4.0, 5.0]);
    assert!(g.get(&c).is_none() && g.get(&unused).is_none());
    assert_eq!(g.len(), 1);
}

#[test]
fn constants_record_nothing() {
    let tape = Tape::new();
    let before = tape.len();
    let x = Var::constant(t(vec![1.0, 2.0], &[2]));
    let y = x.exp().unwrap().mul(&x).unwrap().softmax().unwrap();
    assert!(!y.is_tracked());
    assert_eq!(tape.len(), before);
    assert!(
        y.sum_all().unwrap().backward().is_err(),
        "a constant loss has no gradient to take"
    );
}

#[test]
fn engine_errors_are_clear() {
    let tape = Tape::new();
    let x = tape.var(t(vec![1.0, 2.0], &[2]));
    let e = x.exp().unwrap().backward().unwrap_err();
    assert!(e.to_string().contains("single value"), "{e}");
    let loss = x.sum_all().unwrap();
    loss.backward().unwrap();
    assert!(loss
        .backward()
        .unwrap_err()
        .to_string()
        .contains("already ran"));
    let other = Tape::new().var(t(vec![1.0, 1.0], &[2]));
    assert!(x
        .add(&other)
        .unwrap_err()
        .to_string()
        .contains("two different tapes"));
    let f32_var = tape.var(Tensor::zeros([2], DType::F32, Device::Cpu).unwrap());
    assert!(x.add(&f32_var).is_err());
}
