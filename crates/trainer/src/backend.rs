//! Picks the device: burn-wgpu on a real GPU adapter, otherwise burn's Flex CPU backend
//! (the fastest CPU backend measured on our 2-core machines; see README "Benchmarks").

use burn::prelude::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// wgpu if a hardware GPU adapter exists, else CPU.
    Auto,
    /// burn-wgpu (Vulkan/Metal/DX12); an error if no adapter can be opened.
    Wgpu,
    /// burn's Flex CPU backend.
    Cpu,
}

pub struct Selected {
    pub device: Device,
    /// Human description for the log and the report.
    pub description: String,
    /// burn-wgpu rather than burn's CPU backend.
    pub gpu: bool,
}

pub fn select(choice: BackendChoice) -> anyhow::Result<Selected> {
    let cpu = || Selected { device: Device::flex(), description: format!("CPU (burn Flex, {} threads)", cores()), gpu: false };
    match choice {
        BackendChoice::Cpu => Ok(cpu()),
        BackendChoice::Wgpu => try_wgpu(true),
        BackendChoice::Auto => Ok(try_wgpu(false).unwrap_or_else(|e| {
            eprintln!("no GPU for wgpu ({e}); using the CPU");
            cpu()
        })),
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Opens a wgpu adapter. With `allow_software` false, software adapters (llvmpipe,
/// SwiftShader) are refused: on those the CPU backend is faster.
fn try_wgpu(allow_software: bool) -> anyhow::Result<Selected> {
    // wgpu may panic on broken drivers instead of returning an error; treat that as "no GPU".
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
    std::panic::set_hook(prev);
    let (device, setup) = match result {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => anyhow::bail!("{e}"),
        Err(_) => anyhow::bail!("the wgpu driver panicked while opening an adapter"),
    };
    let info = setup.adapter.get_info();
    let software = matches!(info.device_type, burn::tensor::wgpu::wgpu::DeviceType::Cpu);
    if software && !allow_software {
        anyhow::bail!("only a software adapter ({}) is available", info.name);
    }
    Ok(Selected { device, description: format!("wgpu on {} ({:?}, {:?})", info.name, info.device_type, info.backend), gpu: true })
}
