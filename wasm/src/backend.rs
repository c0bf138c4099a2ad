//! Run-time backend choice in the browser.

use std::cell::RefCell;

use burn::backend::wgpu::{WgpuDevice, graphics::WebGpu, init_setup_async};
use wasm_bindgen::prelude::*;

/// The CPU fallback: the same pure-Rust backend as native `--backend cpu`.
pub type Cpu = burn::backend::Flex;
/// burn-wgpu on the browser's WebGPU.
pub type Gpu = burn::backend::wgpu::WebGpu;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Active {
    WebGpu { adapter: String },
    Cpu { why: String },
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

pub(crate) fn active() -> Option<Active> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Pick the backend for this page. `adapter_name` is what the page's own
/// `navigator.gpu.requestAdapter()` returned (empty when it returned null or WebGPU is
/// missing); `force_cpu` lets the user (and the tests) choose the fallback explicitly.
/// `cpu_reason`, when given, is the page's own account of why there is no adapter (no
/// `navigator.gpu`, `requestAdapter()` returned null or threw), shown instead of the generic one.
/// Returns a one-line description for the page to show.
#[wasm_bindgen]
pub async fn init_backend(
    adapter_name: String,
    force_cpu: bool,
    cpu_reason: Option<String>,
) -> Result<String, JsValue> {
    if let Some(a) = active() {
        return Ok(describe(&a));
    }
    let reason = cpu_reason.filter(|r| !r.trim().is_empty());
    let chosen = if force_cpu {
        Active::Cpu {
            why: reason.unwrap_or_else(|| "CPU requested".to_string()),
        }
    } else if adapter_name.is_empty() {
        Active::Cpu {
            why: reason.unwrap_or_else(|| "this browser offers no WebGPU adapter".to_string()),
        }
    } else {
        init_setup_async::<WebGpu>(&WgpuDevice::DefaultDevice, Default::default()).await;
        Active::WebGpu {
            adapter: adapter_name,
        }
    };
    let text = describe(&chosen);
    ACTIVE.with(|a| *a.borrow_mut() = Some(chosen));
    Ok(text)
}

fn describe(a: &Active) -> String {
    match a {
        Active::WebGpu { adapter } => format!("WebGPU ({adapter})"),
        Active::Cpu { why } => format!("CPU fallback ({why})"),
    }
}
