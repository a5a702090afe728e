//! The wgpu backend: the WGSL kernels of `shaders/wgsl` on any Vulkan adapter (a GPU, or
//! Mesa's software lavapipe in CI), in `f32`. Kernels are compiled when the backend is
//! created, so a WGSL error is a construction error, not a failure mid-run; wgpu's
//! validation errors are captured and returned, never a panic.

use crate::plan::{ChunkDesc, GpuOptions, RunStats, Session};
use crate::KernelId;
use regime_core::backend::{ComputeBackend, LogLik, ObsMatrix, Panel, ParamTable, Posteriors};
use regime_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const WORKGROUP: u32 = 64;

fn unavailable(reason: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        backend: "wgpu",
        reason: reason.to_string(),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("wgpu {what}: {e}").into())
}

/// The WGSL kernels on a wgpu adapter.
#[derive(Debug)]
pub struct WgpuBackend {
    state: Mutex<State>,
    device_name: String,
    last: Mutex<RunStats>,
    software: bool,
    opts: GpuOptions,
}

#[derive(Debug)]
struct Buf {
    buffer: wgpu::Buffer,
    /// Bytes in use (the buffer may be larger).
    used: u64,
}

#[derive(Debug)]
struct State {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: HashMap<KernelId, wgpu::ComputePipeline>,
    errors: Arc<Mutex<Vec<String>>>,
    max_binding: u64,
    max_groups: u32,
    src: Option<Buf>,
    chunks: Option<Buf>,
    params: Option<Buf>,
    states: Option<Buf>,
    out_f: Option<Buf>,
    out_u: Option<Buf>,
    info: wgpu::Buffer,
}

/// Bindings each entry point uses (its automatic layout holds exactly these).
fn bindings(k: KernelId) -> &'static [u32] {
    match k {
        KernelId::VolumeScan => &[0, 1, 3, 6],
        KernelId::Features => &[0, 1, 4, 6],
        KernelId::Emission => &[0, 1, 2, 4, 6],
        KernelId::Filter | KernelId::Detect => &[0, 1, 2, 3, 4, 5, 6],
    }
}

fn first_adapter() -> Result<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| unavailable(format!("no Vulkan adapter ({e})")))
}

/// The adapter [`WgpuBackend::new`] would use, without creating a device or compiling
/// kernels: `(name, is_software)`. `auto` asks this first, so a machine with only a
/// software renderer does not pay for compiling kernels it will not use.
pub fn probe() -> Result<(String, bool)> {
    let info = first_adapter()?.get_info();
    Ok((
        format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
        info.device_type == wgpu::DeviceType::Cpu,
    ))
}

impl WgpuBackend {
    /// The first adapter wgpu offers (high performance preferred), with every kernel compiled.
    pub fn new(opts: GpuOptions) -> Result<Self> {
        opts.validate()?;
        let adapter = first_adapter()?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("regime"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| unavailable(format!("device request failed ({e})")))?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let mut pipelines = HashMap::new();
        for k in KernelId::ALL {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(k.name()),
                source: wgpu::ShaderSource::Wgsl(k.wgsl_source().into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(k.entry()),
                layout: None,
                module: &module,
                entry_point: Some(k.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(failed(&format!("kernel {} does not compile", k.name()), e));
            }
            pipelines.insert(k, pipeline);
        }
        let info_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("info"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let device_name = format!(
            "{} ({:?}, {:?}, driver {} {})",
            info.name, info.backend, info.device_type, info.driver, info.driver_info
        );
        Ok(WgpuBackend {
            state: Mutex::new(State {
                device,
                queue,
                pipelines,
                errors,
                max_binding: limits
                    .max_storage_buffer_binding_size
                    .min(limits.max_buffer_size),
                max_groups: limits.max_compute_workgroups_per_dimension.max(1),
                src: None,
                chunks: None,
                params: None,
                states: None,
                out_f: None,
                out_u: None,
                info: info_buf,
            }),
            device_name,
            last: Mutex::default(),
            software: info.device_type == wgpu::DeviceType::Cpu,
            opts,
        })
    }

    /// True for a software adapter (lavapipe/llvmpipe): correct, but no faster than the
    /// CPU backend, so `auto` passes it over.
    pub fn is_software(&self) -> bool {
        self.software
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| failed("state", "poisoned by an earlier panic"))
    }
}

impl State {
    fn check_errors(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| failed("error sink", "poisoned"))?;
        if v.is_empty() {
            return Ok(());
        }
        let msg = v.join("; ");
        v.clear();
        Err(failed("validation", msg))
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| failed("poll", e))?;
        self.check_errors()
    }

    /// A storage buffer of at least `bytes` (reused when big enough).
    fn ensure(&self, slot: Option<Buf>, bytes: u64, label: &str) -> Result<Buf> {
        let alloc = bytes.max(16).next_multiple_of(4);
        if alloc > self.max_binding {
            return Err(failed(
                "buffer",
                format!(
                    "{label} needs {alloc} bytes, the adapter allows {}",
                    self.max_binding
                ),
            ));
        }
        if let Some(b) = slot {
            if b.buffer.size() >= alloc {
                return Ok(Buf { used: bytes, ..b });
            }
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: alloc,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Ok(Buf {
            buffer,
            used: bytes,
        })
    }

    fn upload(
        &mut self,
        which: fn(&mut State) -> &mut Option<Buf>,
        parts: &[&[u8]],
        label: &str,
    ) -> Result<()> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let slot = which(self).take();
        let buf = self.ensure(slot, total, label)?;
        let mut off = 0u64;
        for p in parts {
            if !p.is_empty() {
                self.queue.write_buffer(&buf.buffer, off, p);
            }
            off += p.len() as u64;
        }
        *which(self) = Some(buf);
        Ok(())
    }

    fn read(&self, b: &Option<Buf>, label: &str) -> Result<Vec<u8>> {
        let b = b
            .as_ref()
            .ok_or_else(|| failed("read", format!("{label} was never written")))?;
        if b.used == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size: b.used,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&b.buffer, 0, &staging, 0, b.used);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| failed("map", e))?
            .map_err(|e| failed("map", e))?;
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| failed("map range", e))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Session for State {
    fn max_rows(&self, _width: usize) -> usize {
        // the widest buffer per row is 18 floats (log-likelihoods)
        (self.max_binding / (4 * regime_core::model::NS as u64)) as usize
    }

    fn upload_src(&mut self, columns: &[&[f32]]) -> Result<()> {
        let parts: Vec<&[u8]> = columns.iter().map(|c| bytemuck::cast_slice(c)).collect();
        self.upload(|s| &mut s.src, &parts, "src")
    }

    fn upload_chunks(&mut self, chunks: &[ChunkDesc]) -> Result<()> {
        self.upload(|s| &mut s.chunks, &[bytemuck::cast_slice(chunks)], "chunks")
    }

    fn upload_params(&mut self, params: &[f32]) -> Result<()> {
        self.upload(|s| &mut s.params, &[bytemuck::cast_slice(params)], "params")
    }

    fn upload_states(&mut self, states: &[f32]) -> Result<()> {
        self.upload(|s| &mut s.states, &[bytemuck::cast_slice(states)], "states")
    }

    fn alloc_outputs(&mut self, n_f: usize, n_u: usize) -> Result<()> {
        let (old_f, old_u) = (self.out_f.take(), self.out_u.take());
        let f = self.ensure(old_f, n_f as u64 * 4, "out_f")?;
        let u = self.ensure(old_u, n_u as u64 * 4, "out_u")?;
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&f.buffer, 0, None);
        enc.clear_buffer(&u.buffer, 0, None);
        self.queue.submit([enc.finish()]);
        self.out_f = Some(f);
        self.out_u = Some(u);
        Ok(())
    }

    fn launch(&mut self, k: KernelId, n_rows: usize, n_chunks: usize, pass: u32) -> Result<()> {
        if n_chunks == 0 {
            return Ok(());
        }
        let info = [n_rows as u32, n_chunks as u32, pass, 0];
        self.queue
            .write_buffer(&self.info, 0, bytemuck::cast_slice(&info));
        let pipeline = self
            .pipelines
            .get(&k)
            .ok_or_else(|| failed("launch", format!("no pipeline for {}", k.name())))?;
        fn need<'a>(b: &'a Option<Buf>, name: &str) -> Result<wgpu::BindingResource<'a>> {
            b.as_ref()
                .map(|b| b.buffer.as_entire_binding())
                .ok_or_else(|| failed("launch", format!("{name} not uploaded")))
        }
        let mut entries = Vec::new();
        for &binding in bindings(k) {
            let resource = match binding {
                0 => need(&self.src, "src")?,
                1 => need(&self.chunks, "chunks")?,
                2 => need(&self.params, "params")?,
                3 => need(&self.states, "states")?,
                4 => need(&self.out_f, "out_f")?,
                5 => need(&self.out_u, "out_u")?,
                _ => self.info.as_entire_binding(),
            };
            entries.push(wgpu::BindGroupEntry { binding, resource });
        }
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(k.name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let groups = (n_chunks as u32).div_ceil(WORKGROUP);
        let x = groups.min(self.max_groups);
        let y = groups.div_ceil(x);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(k.entry()),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        self.queue.submit([enc.finish()]);
        self.wait()
    }

    fn read_states(&mut self) -> Result<Vec<f32>> {
        Ok(floats(&self.read(&self.states, "states")?))
    }

    fn read_f(&mut self) -> Result<Vec<f32>> {
        Ok(floats(&self.read(&self.out_f, "out_f")?))
    }

    fn read_u(&mut self) -> Result<Vec<u32>> {
        Ok(self
            .read(&self.out_u, "out_u")?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

crate::plan::gpu_backend!(WgpuBackend, "wgpu", |s| s.wait());
