//! The parameter store: every weight of a model by its checkpoint name, and the binding of
//! those weights to a tape for one forward pass.
//!
//! Layers hold [`Param`] handles (names), not tensors. A forward pass first binds the store:
//! `store.bind(Some(&tape))` makes each weight a tracked leaf (training), `store.bind(None)` a
//! constant (inference, nothing recorded). After `backward`, [`Bound::gradients`] gives the
//! gradient of every weight by name.

use autograd::{Gradients, Tape, Var};
use std::collections::{BTreeMap, HashMap};
use tensor::{DType, Device, Error, Result, Rng, Shape, Tensor};

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// U(−bound, bound)
    Uniform(f64),
    /// N(0, std²)
    Normal(f64),
}

/// A handle to one parameter: its name in the store (and in checkpoints).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param(String);

impl Param {
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// All weights of a model, ordered by name.
#[derive(Clone, Debug)]
pub struct ParamStore {
    params: BTreeMap<String, Tensor>,
    dtype: DType,
    device: Device,
}

impl ParamStore {
    /// An empty store whose parameters will be made with `dtype` on `device`.
    pub fn new(dtype: DType, device: Device) -> Self {
        ParamStore {
            params: BTreeMap::new(),
            dtype,
            device,
        }
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> Device {
        self.device
    }

    /// Creates a parameter. Fails if the name is taken.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Shape>,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Param> {
        let (name, shape) = (name.into(), shape.into());
        if self.params.contains_key(&name) {
            return Err(Error::msg(
                "ParamStore::add",
                format!("parameter '{name}' already exists"),
            ));
        }
        let (dt, dev) = (self.dtype, self.device);
        let t = match init {
            Init::Zeros => Tensor::zeros(shape, dt, dev)?,
            Init::Ones => Tensor::ones(shape, dt, dev)?,
            Init::Uniform(b) => Tensor::rand_uniform(shape, -b, b, dt, dev, rng)?,
            Init::Normal(std) => Tensor::randn(shape, 0.0, std, dt, dev, rng)?,
        };
        self.params.insert(name.clone(), t);
        Ok(Param(name))
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.params.get(name)
    }

    /// Replaces a parameter's value; the shape and dtype must stay the same.
    pub fn set(&mut self, name: &str, value: Tensor) -> Result<()> {
        let Some(old) = self.params.get_mut(name) else {
            return Err(Error::msg(
                "ParamStore::set",
                format!("no parameter named '{name}'"),
            ));
        };
        if old.shape() != value.shape() || old.dtype() != value.dtype() {
            let msg = format!(
                "'{name}' is {:?} {:?}, got {:?} {:?}",
                old.shape(),
                old.dtype(),
                value.shape(),
                value.dtype()
            );
            return Err(Error::shape("ParamStore::set", msg));
        }
        *old = value;
        Ok(())
    }

    /// (name, tensor) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.params.iter()
    }
    pub fn len(&self) -> usize {
        self.params.len()
    }
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
    /// Total number of scalar weights.
    pub fn num_elements(&self) -> usize {
        self.params.values().map(|t| t.numel()).sum()
    }

    /// Binds every parameter for one forward pass: tracked leaves on `tape`, or constants.
    pub fn bind(&self, tape: Option<&Tape>) -> Bound {
        let vars = self.params.iter().map(|(n, t)| {
            let leaf = leaf(tape, t);
            (n.clone(), (leaf.clone(), leaf))
        });
        Bound {
            vars: vars.collect(),
        }
    }

    /// Mixed precision: binds every parameter as [`bind`](Self::bind) does, but the forward
    /// pass sees it cast to `compute` (bf16 activations and matmuls over f32 master weights).
    /// The cast is recorded, so gradients come back in the store's dtype, for the optimizer.
    pub fn bind_as(&self, tape: Option<&Tape>, compute: DType) -> Result<Bound> {
        let vars = self
            .params
            .iter()
            .map(|(n, t)| {
                let leaf = leaf(tape, t);
                let seen = match t.dtype() == compute {
                    true => leaf.clone(),
                    false => leaf.to_dtype(compute)?,
                };
                Ok((n.clone(), (leaf, seen)))
            })
            .collect::<Result<_>>()?;
        Ok(Bound { vars })
    }
}

/// A tracked leaf on `tape`, or a constant without one.
fn leaf(tape: Option<&Tape>, t: &Tensor) -> Var {
    tape.map_or_else(|| Var::constant(t.clone()), |tape| tape.var(t.clone()))
}

/// The parameters of a store as `Var`s for one forward pass: each leaf, and the variable the
/// forward pass uses (the leaf itself, or its cast to the compute dtype).
pub struct Bound {
    vars: HashMap<String, (Var, Var)>,
}

impl Bound {
    /// A binding from explicit (name, variable) pairs, e.g. a gradient checker's inputs.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, Var)>) -> Bound {
        Bound {
            vars: vars.into_iter().map(|(n, v)| (n, (v.clone(), v))).collect(),
        }
    }

    /// The variable of a parameter, as the forward pass uses it.
    pub fn get(&self, p: &Param) -> Result<&Var> {
        match self.vars.get(&p.0) {
            Some((_, seen)) => Ok(seen),
            None => Err(Error::msg(
                "Bound::get",
                format!("parameter '{}' is not in the bound store", p.0),
            )),
        }
    }

    /// Gradients by parameter name, in the store's dtype; a parameter the loss does not reach
    /// gets no entry.
    pub fn gradients(&self, grads: &Gradients) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .filter_map(|(n, (leaf, _))| grads.get(leaf).map(|g| (n.clone(), g.clone())))
            .collect()
    }
}
