//! Named tensors in, f32 Burn tensors out.
//!
//! core never opens files (it also builds for wasm32), so a checkpoint reaches it as a
//! [`TensorSource`]: something that answers "tensor `name`: dtype, shape, raw little-endian
//! bytes". Natively that is a set of memory-mapped safetensors shards; in the browser it is a
//! downloaded buffer. [`SafetensorsShards`] implements the trait over any byte slices, so both
//! sides share the parsing. Conversion to f32 happens one tensor at a time, so loading never
//! holds more than the source plus the finished model plus one tensor in flight.

use std::collections::HashMap;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// Storage types a checkpoint may use. All are computed in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightDType {
    F32,
    F16,
    BF16,
}

impl WeightDType {
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }
}

/// One stored tensor, borrowed from its source.
#[derive(Clone, Debug)]
pub struct RawTensor<'a> {
    pub dtype: WeightDType,
    pub shape: Vec<usize>,
    /// Little-endian element bytes, row-major; may be unaligned.
    pub bytes: &'a [u8],
}

/// Why a checkpoint's tensors cannot fill the model.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("tensor `{name}` is missing from the checkpoint (expected shape {expected:?})")]
    Missing { name: String, expected: Vec<usize> },
    #[error(
        "tensor `{name}` has shape {found:?} in the checkpoint but the config expects {expected:?}"
    )]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype {dtype}; only F32, F16 and BF16 are supported")]
    DType { name: String, dtype: String },
    #[error("tensor `{name}` holds {found} bytes, its shape {shape:?} needs {expected}")]
    Size {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("tensor `{name}` appears in more than one shard")]
    Duplicate { name: String },
    #[error("{what} is not a valid safetensors file: {why}")]
    Format { what: String, why: String },
}

/// A checkpoint as a set of named tensors.
pub trait TensorSource {
    /// The tensor called `name`, or `None` when the checkpoint lacks it.
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, WeightError>;
}

/// One or more safetensors buffers (a single `model.safetensors` or the shards listed by
/// `model.safetensors.index.json`), parsed in place without copying tensor data.
pub struct SafetensorsShards<'a> {
    shards: Vec<SafeTensors<'a>>,
    /// Tensor name -> index into `shards`.
    owner: HashMap<String, usize>,
}

impl<'a> SafetensorsShards<'a> {
    /// Parse every shard's header. `label` names a shard in errors (usually its file name).
    pub fn new<I>(buffers: I) -> Result<Self, WeightError>
    where
        I: IntoIterator<Item = (String, &'a [u8])>,
    {
        let mut shards = Vec::new();
        let mut owner = HashMap::new();
        for (label, bytes) in buffers {
            let parsed = SafeTensors::deserialize(bytes).map_err(|e| WeightError::Format {
                what: label.clone(),
                why: describe_safetensors_error(&e),
            })?;
            let index = shards.len();
            for name in parsed.names() {
                if owner.insert(name.to_string(), index).is_some() {
                    return Err(WeightError::Duplicate {
                        name: name.to_string(),
                    });
                }
            }
            shards.push(parsed);
        }
        Ok(Self { shards, owner })
    }

    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.owner.keys().map(String::as_str)
    }
}

fn describe_safetensors_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::MetadataIncompleteBuffer => {
            "the tensor data does not match the header (file truncated?)".to_string()
        }
        E::HeaderTooSmall | E::InvalidHeaderLength => {
            "the header is cut short (file truncated?)".to_string()
        }
        other => format!("{other:?}"),
    }
}

impl TensorSource for SafetensorsShards<'_> {
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, WeightError> {
        let Some(&index) = self.owner.get(name) else {
            return Ok(None);
        };
        let view = self.shards[index]
            .tensor(name)
            .map_err(|e| WeightError::Format {
                what: format!("tensor `{name}`"),
                why: format!("{e:?}"),
            })?;
        let dtype = match view.dtype() {
            Dtype::F32 => WeightDType::F32,
            Dtype::F16 => WeightDType::F16,
            Dtype::BF16 => WeightDType::BF16,
            other => {
                return Err(WeightError::DType {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok(Some(RawTensor {
            dtype,
            shape: view.shape().to_vec(),
            bytes: view.data(),
        }))
    }
}

/// Named f32 tensors held in memory: freshly initialised weights ([`super::init`]) or a
/// trained model on its way to a safetensors file ([`super::export`]). Ordered by name so the
/// serialised file is byte-for-byte reproducible.
#[derive(Clone, Debug, Default)]
pub struct OwnedTensors {
    tensors: std::collections::BTreeMap<String, (Vec<usize>, Vec<u8>)>,
}

impl OwnedTensors {
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, values: &[f32]) {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors.insert(name.into(), (shape, bytes));
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The f32 values of tensor `name`.
    pub fn values(&self, name: &str) -> Option<Vec<f32>> {
        let (_, bytes) = self.tensors.get(name)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    /// A safetensors file (F32 tensors, `format: pt` metadata as transformers writes it).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, WeightError> {
        let views = self
            .tensors
            .iter()
            .map(|(name, (shape, bytes))| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| WeightError::Format {
                        what: format!("tensor `{name}`"),
                        why: format!("{e:?}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| WeightError::Format {
            what: "the exported model".to_string(),
            why: format!("{e:?}"),
        })
    }
}

impl TensorSource for OwnedTensors {
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, WeightError> {
        Ok(self.tensors.get(name).map(|(shape, bytes)| RawTensor {
            dtype: WeightDType::F32,
            shape: shape.clone(),
            bytes,
        }))
    }
}

/// Decode little-endian f32/f16/bf16 bytes to f32 values.
pub fn decode_f32(name: &str, raw: &RawTensor<'_>) -> Result<Vec<f32>, WeightError> {
    let count: usize = raw.shape.iter().product();
    let expected = count * raw.dtype.size();
    if raw.bytes.len() != expected {
        return Err(WeightError::Size {
            name: name.to_string(),
            shape: raw.shape.clone(),
            expected,
            found: raw.bytes.len(),
        });
    }
    let out = match raw.dtype {
        WeightDType::F32 => raw
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        WeightDType::BF16 => raw
            .bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        WeightDType::F16 => raw
            .bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    Ok(out)
}

/// Transpose a row-major `[rows, cols]` matrix, in cache-friendly tiles.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0.0f32; values.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// Turns named checkpoint tensors into Burn parameters on one device, checking each shape.
pub struct WeightLoader<'s, B: Backend, S: TensorSource + ?Sized> {
    source: &'s S,
    device: B::Device,
}

impl<'s, B: Backend, S: TensorSource + ?Sized> WeightLoader<'s, B, S> {
    pub fn new(source: &'s S, device: &B::Device) -> Self {
        Self {
            source,
            device: device.clone(),
        }
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    pub fn has(&self, name: &str) -> Result<bool, WeightError> {
        Ok(self.source.tensor(name)?.is_some())
    }

    /// The tensor `name` decoded to f32, after checking it has exactly `expected` shape.
    fn values(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightError> {
        let raw = self
            .source
            .tensor(name)?
            .ok_or_else(|| WeightError::Missing {
                name: name.to_string(),
                expected: expected.to_vec(),
            })?;
        if raw.shape != expected {
            return Err(WeightError::Shape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: raw.shape.clone(),
            });
        }
        decode_f32(name, &raw)
    }

    pub fn vector(&self, name: &str, len: usize) -> Result<Param<Tensor<B, 1>>, WeightError> {
        let values = self.values(name, &[len])?;
        let tensor = Tensor::from_data(TensorData::new(values, [len]), &self.device);
        Ok(Param::from_tensor(tensor))
    }

    /// A matrix stored as `[rows, cols]`, kept in that layout.
    pub fn matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Param<Tensor<B, 2>>, WeightError> {
        let values = self.values(name, &[rows, cols])?;
        let tensor = Tensor::from_data(TensorData::new(values, [rows, cols]), &self.device);
        Ok(Param::from_tensor(tensor))
    }

    /// A PyTorch `nn.Linear` weight stored as `[out, in]`, returned in Burn's `[in, out]`
    /// layout (transposed while decoding, so no second copy lives on the device).
    pub fn linear_weight(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Param<Tensor<B, 2>>, WeightError> {
        let values = self.values(name, &[d_out, d_in])?;
        let values = transpose(&values, d_out, d_in);
        let tensor = Tensor::from_data(TensorData::new(values, [d_in, d_out]), &self.device);
        Ok(Param::from_tensor(tensor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_three_dtypes() {
        let values = [1.5f32, -2.25, 0.0, 65504.0];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        for (dtype, bytes) in [
            (WeightDType::F32, &f32_bytes),
            (WeightDType::BF16, &bf16_bytes),
            (WeightDType::F16, &f16_bytes),
        ] {
            let raw = RawTensor {
                dtype,
                shape: vec![2, 2],
                bytes,
            };
            let got = decode_f32("t", &raw).unwrap();
            // 65504 is not exact in bf16 (8-bit mantissa): compare within its rounding.
            for (g, v) in got.iter().zip(values) {
                assert!((g - v).abs() <= v.abs() / 128.0, "{dtype:?}: {g} vs {v}");
            }
        }
        let short = RawTensor {
            dtype: WeightDType::F32,
            shape: vec![3],
            bytes: &f32_bytes[..8],
        };
        assert!(matches!(
            decode_f32("t", &short),
            Err(WeightError::Size { .. })
        ));
    }

    #[test]
    fn transposes_non_square_matrices() {
        let m: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [[0,1,2],[3,4,5]]
        assert_eq!(transpose(&m, 2, 3), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let big: Vec<f32> = (0..(70 * 45)).map(|v| v as f32).collect();
        let t = transpose(&big, 70, 45);
        assert_eq!(t[7 * 70 + 66], big[66 * 45 + 7]);
        assert_eq!(transpose(&t, 45, 70), big);
    }
}
