//! The CUDA backend: the CUDA C kernels of `shaders/cuda`, compiled at first use by NVRTC
//! (through cudarc, loaded at run time), in `f32`. Building needs no toolkit; running
//! needs `libcuda` (the driver) and `libnvrtc` (e.g. the `nvidia-cuda-nvrtc` wheel on
//! `LD_LIBRARY_PATH`). cudarc panics when a library is missing, so both are checked
//! before any call and their absence is an [`Error::Unavailable`].

// cudarc's library probes and kernel launches are `unsafe` FFI; each use says why it holds.
#![allow(unsafe_code)]

use crate::plan::{ChunkDesc, GpuOptions, RunStats, Session};
use crate::KernelId;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use regime_core::backend::{ComputeBackend, LogLik, ObsMatrix, Panel, ParamTable, Posteriors};
use regime_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const BLOCK: u32 = 128;

fn unavailable(reason: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        backend: "cuda",
        reason: reason.to_string(),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("cuda {what}: {e}").into())
}

/// True when the NVRTC library can be loaded (no GPU needed).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by name; no symbol is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// True when the CUDA driver library can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library by name; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Compile one kernel to PTX with NVRTC (no device needed). `arch` is e.g. `compute_90`.
pub fn compile(k: KernelId, arch: Option<&str>) -> Result<Ptx> {
    if !nvrtc_present() {
        return Err(unavailable(
            "libnvrtc not found (pip install nvidia-cuda-nvrtc and put its lib directory on LD_LIBRARY_PATH)",
        ));
    }
    let mut options = vec!["--std=c++17".to_string()];
    if let Some(a) = arch {
        options.push(format!("--gpu-architecture={a}"));
    }
    compile_ptx_with_opts(
        k.cuda_source(),
        CompileOptions {
            options,
            name: Some(format!("{}.cu", k.name())),
            ..Default::default()
        },
    )
    .map_err(|e| failed(&format!("NVRTC compile of {}", k.name()), e))
}

/// NVRTC's PTX for one kernel, as text (what CI checks with no GPU).
pub fn compile_to_ptx(k: KernelId, arch: Option<&str>) -> Result<String> {
    Ok(compile(k, arch)?.to_src())
}

/// The CUDA kernels on one device.
#[derive(Debug)]
pub struct CudaBackend {
    state: Mutex<State>,
    device_name: String,
    last: Mutex<RunStats>,
    opts: GpuOptions,
    peak_bandwidth: Option<f64>,
}

#[derive(Debug)]
struct State {
    stream: Arc<CudaStream>,
    functions: HashMap<KernelId, CudaFunction>,
    src: Option<CudaSlice<f32>>,
    chunks: Option<CudaSlice<u32>>,
    params: Option<CudaSlice<f32>>,
    states: Option<CudaSlice<f32>>,
    out_f: Option<CudaSlice<f32>>,
    out_u: Option<CudaSlice<u32>>,
}

impl CudaBackend {
    /// Device `ordinal`, every kernel compiled for its architecture.
    pub fn new(ordinal: usize, opts: GpuOptions) -> Result<Self> {
        opts.validate()?;
        if !driver_present() {
            return Err(unavailable("libcuda not found (no NVIDIA driver)"));
        }
        if !nvrtc_present() {
            return Err(unavailable(
                "libnvrtc not found (pip install nvidia-cuda-nvrtc and put its lib directory on LD_LIBRARY_PATH)",
            ));
        }
        let n = CudaContext::device_count().map_err(|e| unavailable(format!("driver: {e}")))?;
        if n <= ordinal as i32 {
            return Err(unavailable(format!(
                "no CUDA device {ordinal} ({n} present)"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| unavailable(format!("context: {e}")))?;
        use cudarc::driver::sys::CUdevice_attribute as A;
        let attr = |a| ctx.attribute(a).ok();
        let arch = match (
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
        ) {
            (Some(ma), Some(mi)) => Some(format!("compute_{ma}{mi}")),
            _ => None,
        };
        // peak DRAM bandwidth: 2 transfers per clock × bus width
        let peak_bandwidth = match (
            attr(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE),
            attr(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH),
        ) {
            (Some(khz), Some(bits)) if khz > 0 && bits > 0 => {
                Some(2.0 * khz as f64 * 1e3 * bits as f64 / 8.0)
            }
            _ => None,
        };
        let mut functions = HashMap::new();
        for k in KernelId::ALL {
            let ptx = compile(k, arch.as_deref())?;
            let module = ctx
                .load_module(ptx)
                .map_err(|e| failed(&format!("loading {}", k.name()), e))?;
            let f = module
                .load_function(k.entry())
                .map_err(|e| failed(&format!("finding {}", k.entry()), e))?;
            functions.insert(k, f);
        }
        let name = ctx.name().unwrap_or_else(|_| "unknown".into());
        let mem = ctx.total_mem().unwrap_or(0) as f64 / (1u64 << 30) as f64;
        let device_name = format!(
            "{name} (device {ordinal}, {}, {mem:.0} GiB)",
            arch.as_deref().unwrap_or("unknown arch")
        );
        Ok(CudaBackend {
            state: Mutex::new(State {
                stream: ctx.default_stream(),
                functions,
                src: None,
                chunks: None,
                params: None,
                states: None,
                out_f: None,
                out_u: None,
            }),
            device_name,
            last: Mutex::default(),
            opts,
            peak_bandwidth,
        })
    }

    /// Peak memory bandwidth in bytes/s from the device attributes, where reported.
    pub fn peak_bandwidth(&self) -> Option<f64> {
        self.peak_bandwidth
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| failed("state", "poisoned by an earlier panic"))
    }
}

fn drv(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| failed(what, e)
}

impl State {
    fn upload<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        stream: &Arc<CudaStream>,
        slot: &mut Option<CudaSlice<T>>,
        parts: &[&[T]],
    ) -> Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum::<usize>().max(1);
        let reuse = matches!(slot, Some(b) if b.len() == total);
        if !reuse {
            *slot = Some(stream.alloc_zeros::<T>(total).map_err(drv("alloc"))?);
        }
        if let Some(buf) = slot.as_mut() {
            let mut off = 0;
            for p in parts {
                if !p.is_empty() {
                    let mut view = buf.slice_mut(off..off + p.len());
                    stream
                        .memcpy_htod(*p, &mut view)
                        .map_err(drv("copy to device"))?;
                }
                off += p.len();
            }
        }
        Ok(())
    }
}

impl Session for State {
    fn max_rows(&self, _width: usize) -> usize {
        // kernels index rows with 32-bit integers
        u32::MAX as usize / regime_core::model::NS
    }

    fn upload_src(&mut self, columns: &[&[f32]]) -> Result<()> {
        State::upload(&self.stream, &mut self.src, columns)
    }

    fn upload_chunks(&mut self, chunks: &[ChunkDesc]) -> Result<()> {
        State::upload(
            &self.stream,
            &mut self.chunks,
            &[bytemuck::cast_slice(chunks)],
        )
    }

    fn upload_params(&mut self, params: &[f32]) -> Result<()> {
        State::upload(&self.stream, &mut self.params, &[params])
    }

    fn upload_states(&mut self, states: &[f32]) -> Result<()> {
        State::upload(&self.stream, &mut self.states, &[states])
    }

    fn alloc_outputs(&mut self, n_f: usize, n_u: usize) -> Result<()> {
        self.out_f = Some(
            self.stream
                .alloc_zeros::<f32>(n_f.max(1))
                .map_err(drv("alloc"))?,
        );
        self.out_u = Some(
            self.stream
                .alloc_zeros::<u32>(n_u.max(1))
                .map_err(drv("alloc"))?,
        );
        Ok(())
    }

    fn launch(&mut self, k: KernelId, n_rows: usize, n_chunks: usize, pass: u32) -> Result<()> {
        if n_chunks == 0 {
            return Ok(());
        }
        let f = self
            .functions
            .get(&k)
            .ok_or_else(|| failed("launch", format!("no function for {}", k.name())))?;
        fn need<'a, T>(b: &'a Option<T>, what: &str) -> Result<&'a T> {
            b.as_ref()
                .ok_or_else(|| failed("launch", format!("{what} not uploaded")))
        }
        fn need_mut<'a, T>(b: &'a mut Option<T>, what: &str) -> Result<&'a mut T> {
            b.as_mut()
                .ok_or_else(|| failed("launch", format!("{what} not uploaded")))
        }
        let n_rows = n_rows as u32;
        let n_chunks_u = n_chunks as u32;
        let cfg = LaunchConfig {
            grid_dim: (n_chunks_u.div_ceil(BLOCK), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let src = need(&self.src, "src")?;
        let chunks = need(&self.chunks, "chunks")?;
        let mut b = self.stream.launch_builder(f);
        // argument lists mirror the kernels' signatures in shaders/cuda/<kernel>.cu; each
        // kernel gets only the buffers it uses, all of which the driver in plan.rs uploads
        b.arg(src).arg(chunks);
        match k {
            KernelId::VolumeScan => {
                b.arg(need_mut(&mut self.states, "states")?)
                    .arg(&n_rows)
                    .arg(&n_chunks_u)
                    .arg(&pass);
            }
            KernelId::Features => {
                b.arg(need_mut(&mut self.out_f, "out_f")?)
                    .arg(&n_rows)
                    .arg(&n_chunks_u);
            }
            KernelId::Emission => {
                b.arg(need(&self.params, "params")?)
                    .arg(need_mut(&mut self.out_f, "out_f")?)
                    .arg(&n_chunks_u);
            }
            KernelId::Filter | KernelId::Detect => {
                b.arg(need(&self.params, "params")?)
                    .arg(need_mut(&mut self.states, "states")?)
                    .arg(need_mut(&mut self.out_f, "out_f")?)
                    .arg(need_mut(&mut self.out_u, "out_u")?);
                if k == KernelId::Detect {
                    b.arg(&n_rows);
                }
                b.arg(&n_chunks_u);
            }
        }
        // SAFETY: the arguments match the kernel's parameter list above, every buffer was
        // sized by the driver in plan.rs for `n_rows` rows and `n_chunks` chunks, and the
        // kernels bound-check the chunk index.
        unsafe { b.launch(cfg) }.map_err(drv("launch"))?;
        self.stream.synchronize().map_err(drv("synchronize"))
    }

    fn read_states(&mut self) -> Result<Vec<f32>> {
        let b = self
            .states
            .as_ref()
            .ok_or_else(|| failed("read", "states"))?;
        self.stream.clone_dtoh(b).map_err(drv("copy to host"))
    }

    fn read_f(&mut self) -> Result<Vec<f32>> {
        let b = self.out_f.as_ref().ok_or_else(|| failed("read", "out_f"))?;
        self.stream.clone_dtoh(b).map_err(drv("copy to host"))
    }

    fn read_u(&mut self) -> Result<Vec<u32>> {
        let b = self.out_u.as_ref().ok_or_else(|| failed("read", "out_u"))?;
        self.stream.clone_dtoh(b).map_err(drv("copy to host"))
    }
}

crate::plan::gpu_backend!(CudaBackend, "cuda", |s| s
    .stream
    .synchronize()
    .map_err(drv("synchronize")));
