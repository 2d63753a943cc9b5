//! Ops on `Var`: each computes its value with the tensor op and records its backward rule
//! right beside it.

mod adaln;
mod attention;
mod elementwise;
mod index;
mod linalg;
mod reduce;
mod rope;
mod shape;
