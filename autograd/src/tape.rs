//! The tape: record, reverse, accumulate. Op rules live in `ops/`; this file is the engine.

use crate::grad::{Grad, Pending};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tensor::{Error, Result, Tensor};

/// Given the gradient of an op's output, the gradients of its inputs (None: no gradient).
pub(crate) type BackwardFn = Box<dyn FnOnce(&Tensor) -> Result<Vec<Option<Grad>>>>;

struct Node {
    op: &'static str,
    /// The tape entry of each input, or None for an input that is not tracked.
    parents: Vec<Option<usize>>,
    /// None for leaves, and for ops whose backward already ran.
    backward: Option<BackwardFn>,
}

/// A list of recorded ops, shared by the variables recorded on it. Make one per training step
/// and drop it (with its variables) after the backward pass.
#[derive(Clone, Default)]
pub struct Tape(Rc<RefCell<Vec<Node>>>);

/// A tensor that may be tracked on a tape.
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    node: Option<(Tape, usize)>,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entry = self.node.as_ref().map(|(_, id)| *id);
        write!(
            f,
            "Var {{ value: {:?}, tape_entry: {entry:?} }}",
            self.value
        )
    }
}

impl Tape {
    pub fn new() -> Tape {
        Tape::default()
    }

    /// A tracked leaf: its gradient is kept by `backward` (use it for parameters).
    pub fn var(&self, value: Tensor) -> Var {
        let id = self.push(Node {
            op: "leaf",
            parents: vec![],
            backward: None,
        });
        Var {
            value,
            node: Some((self.clone(), id)),
        }
    }

    /// Number of entries recorded so far.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, node: Node) -> usize {
        let mut nodes = self.0.borrow_mut();
        nodes.push(node);
        nodes.len() - 1
    }
}

impl Var {
    /// An untracked value: ops on constants only record if another input is tracked.
    pub fn constant(value: Tensor) -> Var {
        Var { value, node: None }
    }
    /// The value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }
    /// The value, as an untracked Var (gradients stop here).
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }
    pub fn dims(&self) -> &[usize] {
        self.value.dims()
    }
    pub fn shape(&self) -> &tensor::Shape {
        self.value.shape()
    }

    /// Records an op whose output is `value`, computed from `inputs`. When no input is tracked
    /// the result is a constant and `backward` is dropped unrun: inference costs nothing more.
    pub(crate) fn record(
        op: &'static str,
        inputs: &[&Var],
        value: Tensor,
        backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + 'static,
    ) -> Result<Var> {
        Var::record_grads(op, inputs, value, move |dy| {
            Ok(backward(dy)?
                .into_iter()
                .map(|g| g.map(Grad::Dense))
                .collect())
        })
    }

    /// [`Var::record`] for a rule that may return [`Grad::Slice`]s (`narrow`).
    pub(crate) fn record_grads(
        op: &'static str,
        inputs: &[&Var],
        value: Tensor,
        backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Grad>>> + 'static,
    ) -> Result<Var> {
        let Some(tape) = inputs
            .iter()
            .find_map(|v| v.node.as_ref().map(|(t, _)| t.clone()))
        else {
            return Ok(Var::constant(value));
        };
        let mut parents = Vec::with_capacity(inputs.len());
        for v in inputs {
            match &v.node {
                Some((t, _)) if !Rc::ptr_eq(&t.0, &tape.0) => {
                    return Err(Error::msg(
                        op,
                        "inputs were recorded on two different tapes",
                    ))
                }
                node => parents.push(node.as_ref().map(|(_, id)| *id)),
            }
        }
        let id = tape.push(Node {
            op,
            parents,
            backward: Some(Box::new(backward)),
        });
        Ok(Var {
            value,
            node: Some((tape, id)),
        })
    }

    /// Reverse pass from this scalar: the gradient of `self` with respect to every tracked leaf
    /// it depends on. Runs each recorded backward rule once, so call it once per tape.
    pub fn backward(&self) -> Result<Gradients> {
        let Some((tape, root)) = &self.node else {
            return Err(Error::msg(
                "backward",
                "the loss does not depend on any tracked variable",
            ));
        };
        if self.value.numel() != 1 {
            tensor::bail_shape!(
                "backward",
                "the loss must be a single value, got {:?}",
                self.value.shape()
            );
        }
        let mut grads: Vec<Option<Pending>> = (0..=*root).map(|_| None).collect();
        grads[*root] = Some(Pending::Dense(self.value.ones_like()?));
        let mut leaves = HashMap::new();
        for id in (0..=*root).rev() {
            let Some(pending) = grads[id].take() else {
                continue;
            };
            let grad = pending.into_tensor()?;
            // Take the rule out before running it, so the tape is not borrowed meanwhile.
            let (op, parents, rule) = {
                let mut nodes = tape.0.borrow_mut();
                let node = &mut nodes[id];
                (node.op, node.parents.clone(), node.backward.take())
            };
            let Some(rule) = rule else {
                if parents.is_empty() {
                    leaves.insert(id, grad);
                    continue;
                }
                return Err(Error::msg(op, "backward already ran on this tape"));
            };
            let input_grads = rule(&grad)?;
            for (parent, g) in parents.into_iter().zip(input_grads) {
                let (Some(p), Some(g)) = (parent, g) else {
                    continue;
                };
                grads[p] = Some(match grads[p].take() {
                    Some(acc) => acc.add(g)?,
                    None => Pending::new(g),
                });
            }
        }
        Ok(Gradients(leaves))
    }
}

/// Gradients of the tracked leaves, looked up by their `Var`.
#[derive(Default, Debug)]
pub struct Gradients(HashMap<usize, Tensor>);

impl Gradients {
    /// The gradient of a leaf, or None if the loss does not depend on it.
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        var.node.as_ref().and_then(|(_, id)| self.0.get(id))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
