//! The user-facing tensor: a shared, immutable storage plus a layout. Cloning is a reference
//! count; views share the storage; every op returns a new tensor. Ops live in `ops/`.

use crate::cpu::{elementwise, CpuStorage};
use crate::{bail_shape, DType, Device, Error, Layout, Result, Shape, Storage, WithDType};
use std::fmt;
use std::sync::Arc;

#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    storage: Arc<Storage>,
    layout: Layout,
}

impl Tensor {
    // ---- construction -------------------------------------------------------------------------

    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        Tensor(Arc::new(Inner { storage, layout }))
    }

    /// A contiguous tensor over fresh storage.
    pub(crate) fn from_storage(storage: Storage, shape: impl Into<Shape>) -> Tensor {
        Tensor::from_parts(Arc::new(storage), Layout::contiguous(shape))
    }

    /// A CPU tensor from a CPU kernel's output.
    pub(crate) fn from_cpu(storage: CpuStorage, shape: impl Into<Shape>) -> Tensor {
        Tensor::from_storage(Storage::Cpu(storage), shape)
    }

    /// A tensor holding `data` (row-major) with the given shape, on `device`.
    pub fn from_vec<T: WithDType>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != data.len() {
            bail_shape!(
                "from_vec",
                "{} elements do not fill shape {shape:?}",
                data.len()
            );
        }
        Tensor::from_cpu(T::into_storage(data), shape).to_device(device)
    }

    /// Like `from_vec`, copying from a slice.
    pub fn from_slice<T: WithDType>(
        data: &[T],
        shape: impl Into<Shape>,
        device: Device,
    ) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    /// A tensor of one value everywhere.
    pub fn full(
        value: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let n = shape.numel();
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(vec![value as f32; n]),
            DType::F64 => CpuStorage::F64(vec![value; n]),
            DType::BF16 => CpuStorage::BF16(vec![WithDType::from_f64(value); n]),
            DType::F16 => CpuStorage::F16(vec![WithDType::from_f64(value); n]),
            DType::U32 => CpuStorage::U32(vec![value as u32; n]),
            DType::U8 => CpuStorage::U8(vec![value as u8; n]),
        };
        Tensor::from_cpu(storage, shape).to_device(device)
    }
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full(0.0, shape, dtype, device)
    }
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full(1.0, shape, dtype, device)
    }
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape(), self.dtype(), self.device())
    }
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape(), self.dtype(), self.device())
    }
    /// A scalar (rank-0) tensor.
    pub fn scalar(value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full(value, (), dtype, device)
    }
    /// 0, 1, …, n − 1 as u32.
    pub fn arange(n: usize, device: Device) -> Result<Tensor> {
        Tensor::from_vec((0..n as u32).collect::<Vec<_>>(), [n], device)
    }

    // ---- accessors ----------------------------------------------------------------------------

    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }
    pub fn dims(&self) -> &[usize] {
        self.0.layout.dims()
    }
    pub fn rank(&self) -> usize {
        self.dims().len()
    }
    pub fn numel(&self) -> usize {
        self.shape().numel()
    }
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// Resolves a possibly negative dim (−1 = last) for error messages that name `op`.
    pub fn dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        self.shape().dim(op, dim)
    }
    /// True when both tensors share the same storage buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// The CPU storage, or an error naming `op` for tensors on another device.
    pub(crate) fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        self.0.storage.cpu(op)
    }

    /// The elements in row-major order, copied to a Vec on the host.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::dtype(
                "to_vec",
                format!("tensor is {:?}, asked for {:?}", self.dtype(), T::DTYPE),
            ));
        }
        let host = self.to_device(Device::Cpu)?;
        let data = T::slice(host.cpu("to_vec")?).expect("dtype checked above");
        Ok(elementwise::copy_strided(data, host.layout()))
    }
    /// The only element of a one-element tensor.
    pub fn to_scalar<T: WithDType>(&self) -> Result<T> {
        if self.numel() != 1 {
            bail_shape!(
                "to_scalar",
                "tensor of shape {:?} is not a single value",
                self.shape()
            );
        }
        Ok(self.to_vec::<T>()?[0])
    }
    /// Every element as f64, whatever the dtype (for tests and printing).
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        self.to_dtype(DType::F64)?.to_vec::<f64>()
    }

    /// The same values on `device`.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let src = self.contiguous()?;
        Ok(Tensor::from_storage(
            src.0.storage.to_device(device)?,
            self.shape(),
        ))
    }

    // ---- views --------------------------------------------------------------------------------

    fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout)
    }

    /// A row-major copy, or the tensor itself if it already is row-major and spans its whole
    /// storage: kernels take a contiguous tensor's buffer as exactly its elements, so a prefix
    /// view (`narrow(0, 0, n)`) is copied too.
    pub fn contiguous(&self) -> Result<Tensor> {
        let whole = self.0.storage.len() == self.numel();
        if self.is_contiguous() && self.0.layout.offset() == 0 && whole {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::cast::contiguous(self);
        }
        let l = self.layout();
        let storage = match self.cpu("contiguous")? {
            CpuStorage::F32(v) => CpuStorage::F32(elementwise::copy_strided(v, l)),
            CpuStorage::F64(v) => CpuStorage::F64(elementwise::copy_strided(v, l)),
            CpuStorage::BF16(v) => CpuStorage::BF16(elementwise::copy_strided(v, l)),
            CpuStorage::F16(v) => CpuStorage::F16(elementwise::copy_strided(v, l)),
            CpuStorage::U32(v) => CpuStorage::U32(elementwise::copy_strided(v, l)),
            CpuStorage::U8(v) => CpuStorage::U8(elementwise::copy_strided(v, l)),
        };
        Ok(Tensor::from_cpu(storage, self.shape()))
    }

    /// The same elements under a new shape; a view when the layout allows, a copy otherwise.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            bail_shape!(
                "reshape",
                "cannot reshape {:?} ({} elements) to {shape:?}",
                self.shape(),
                self.numel()
            );
        }
        match self.layout().reshape(&shape) {
            Some(l) => Ok(self.with_layout(l)),
            None => self.contiguous()?.reshape(shape),
        }
    }
    /// Swaps two dims (a view).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (self.dim("transpose", a)?, self.dim("transpose", b)?);
        Ok(self.with_layout(self.layout().transpose(a, b)))
    }
    /// Swaps the last two dims (a view).
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }
    /// Reorders dims: output dim i is input dim `perm[i]` (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().permute(perm)?))
    }
    /// Keeps `len` entries of `dim` from `start` (a view).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.dim("narrow", dim)?;
        Ok(self.with_layout(self.layout().narrow(d, start, len)?))
    }
    /// Repeats size-1 and missing leading dims to reach `shape` (a view with stride 0).
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().broadcast_as(&shape.into())?))
    }
    /// Inserts a dim of size 1 at `dim` (0..=rank).
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        if dim > self.rank() {
            bail_shape!(
                "unsqueeze",
                "dim {dim} is past the end of {:?}",
                self.shape()
            );
        }
        let mut dims = self.dims().to_vec();
        dims.insert(dim, 1);
        let mut strides = self.layout().strides().to_vec();
        strides.insert(dim, 1); // any stride works for a dim of size 1
        Ok(self.with_layout(Layout::from_raw(
            Shape::new(dims),
            strides,
            self.layout().offset(),
        )))
    }
    /// Removes a dim of size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.dim("squeeze", dim)?;
        if self.dims()[d] != 1 {
            bail_shape!("squeeze", "dim {d} of {:?} is not of size 1", self.shape());
        }
        let mut dims = self.dims().to_vec();
        dims.remove(d);
        let mut strides = self.layout().strides().to_vec();
        strides.remove(d);
        Ok(self.with_layout(Layout::from_raw(
            Shape::new(dims),
            strides,
            self.layout().offset(),
        )))
    }
    /// Collapses all dims into one.
    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape([self.numel()])
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {:?}, {}]",
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if self.numel() <= 16 {
            if let Ok(v) = self.to_f64_vec() {
                write!(f, " {v:?}")?;
            }
        }
        Ok(())
    }
}
