//! Headless Chromium through chromedriver, with or without WebGPU.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator, wd::TimeoutConfiguration};
use serde_json::{Value, json};

use crate::{dist, server::StaticServer};

/// Two Chromiums at once on two cores would only slow both down.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Serves `dist/`, opens Chromium (`gpu`), runs `scenario`, closes the browser, and panics with
/// the scenario's error, if any. One browser at a time per test binary.
pub fn session(gpu: Gpu, scenario: impl AsyncFnOnce(&Browser, &StaticServer) -> Result<()>) {
    session_with(gpu, &[], scenario)
}

/// [`session`] with more Chromium switches (a fake camera, say).
pub fn session_with(gpu: Gpu, switches: &[String], scenario: impl AsyncFnOnce(&Browser, &StaticServer) -> Result<()>) {
    let _one = ONE_BROWSER_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let server = StaticServer::start(dist());
        let browser = Browser::launch_with(gpu, switches).await.expect("launching headless Chromium");
        let result = scenario(&browser, &server).await;
        let _ = browser.close().await;
        result.unwrap();
    });
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Switches that give Chromium a camera showing `video` (Y4M, `C420`, or MJPEG) and grant it
/// to the page without asking.
pub fn fake_camera(video: &std::path::Path) -> Vec<String> {
    vec![
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-video-capture={}", video.display()),
    ]
}

/// Whether the browser offers WebGPU. Here `--enable-unsafe-webgpu` gives a SwiftShader
/// (CPU) adapter; without it `requestAdapter()` returns null, the page's CPU-fallback case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpu {
    WebGpu,
    Unavailable,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl Browser {
    pub async fn launch(gpu: Gpu) -> Result<Self> {
        Self::launch_with(gpu, &[]).await
    }

    /// Chromium with more switches than the tests' usual ones.
    pub async fn launch_with(gpu: Gpu, switches: &[String]) -> Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !std::path::Path::new(path).exists() {
                bail!("{path} is missing: `apt-get install {package}` (cargo xtask test does it)");
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempfile::tempdir()?;
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if gpu == Gpu::WebGpu {
            args.push("--enable-unsafe-webgpu".into());
        }
        args.extend(switches.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(_) if started.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => bail!("chromedriver did not start a browser: {e}"),
            }
        };
        client.update_timeouts(TimeoutConfiguration::new(Some(Duration::from_secs(600)), Some(Duration::from_secs(120)), None)).await?;
        Ok(Self { client, driver, _profile: profile })
    }

    /// From the next page load on, counts the WebGPU buffers the page creates and frees, in
    /// `window.fashionGpuBuffers` (`created`, `liveBytes`, `peakLiveBytes`). Installed through
    /// the DevTools protocol, before any page script runs, so the page's own buffers (weights
    /// included) are all seen; the page itself is unchanged.
    pub async fn count_gpu_buffers(&self) -> Result<()> {
        self.before_page_scripts(GPU_BUFFER_COUNTER).await.context("installing the GPU buffer counter")
    }

    /// Destroys every WebGPU device the page made a buffer on, as a driver reset would (needs
    /// [`Self::count_gpu_buffers`] before the page loaded). Returns how many there were.
    pub async fn lose_gpu_devices(&self) -> Result<u64> {
        let destroyed = self
            .eval("const all = [...(self.fashionGpuDevices ?? [])]; all.forEach((d) => d.destroy()); return all.length", vec![])
            .await?;
        destroyed.as_u64().context("the device count is not a number")
    }

    /// One DevTools-protocol command (`Emulation.…`, say) on the current tab.
    pub async fn devtools(&self, cmd: &'static str, params: Value) -> Result<Value> {
        Ok(self.client.issue_cmd(Cdp { cmd, params }).await.with_context(|| format!("DevTools {cmd}"))?)
    }

    /// Runs `source` in every page loaded from now on, before the page's own scripts (through
    /// the DevTools protocol): to observe the page, or to take a browser feature away.
    pub async fn before_page_scripts(&self, source: &str) -> Result<()> {
        self.client
            .issue_cmd(Cdp { cmd: "Page.addScriptToEvaluateOnNewDocument", params: json!({ "source": source }) })
            .await
            .context("adding a script through chromedriver's DevTools endpoint")?;
        Ok(())
    }

    /// Runs `body` (JavaScript) and returns its value.
    pub async fn eval(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute(body, args).await?)
    }

    /// Awaits a promise-returning expression; a rejection becomes `Err`.
    pub async fn eval_promise(&self, expression: &str, args: Vec<Value>) -> Result<Value> {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             Promise.resolve().then(() => {expression}).then(v => done({{ok: v === undefined ? null : v}}), e => done({{err: String(e)}}));"
        );
        let out = self.client.execute_async(&script, args).await?;
        match out.get("ok") {
            Some(v) => Ok(v.clone()),
            None => bail!("{}", out.get("err").and_then(Value::as_str).unwrap_or("script failed")),
        }
    }

    /// Paths of everything the page fetched before it could answer (the document and every
    /// resource that started before the `fashion-ready` mark), from the browser's own timing.
    pub async fn fetched_before_ready(&self) -> Result<Vec<String>> {
        let paths = self
            .eval(
                "const ready = performance.getEntriesByName('fashion-ready')[0].startTime;
                 return ['/', ...performance.getEntriesByType('resource')
                     .filter(e => e.startTime <= ready).map(e => new URL(e.name).pathname)];",
                vec![],
            )
            .await?;
        Ok(paths.as_array().context("resource list")?.iter().filter_map(|p| p.as_str().map(String::from)).collect())
    }

    /// Waits until the page can answer and its backend is settled: on WebGPU once the WebGPU
    /// module has started (the page answers on the CPU meanwhile; the badge has
    /// `data-pending` until then), on the CPU once WebGPU has been ruled out.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_for(
            "document.querySelector('[data-testid=ready]') && !document.querySelector('[data-testid=backend][data-pending]')",
            timeout,
        )
        .await
    }

    /// Waits until the service worker has stored the offline copy (`web/loader.js` sets
    /// `data-offline` on `<html>`); its downloads are then over.
    pub async fn wait_for_offline_copy(&self) -> Result<()> {
        self.wait_for("document.documentElement.dataset.offline === 'ready'", Duration::from_secs(120)).await
    }

    /// Records the page's long main-thread tasks (over 50 ms) from now on, through
    /// `PerformanceObserver` (`longtask`); [`Browser::longest_task_ms`] reads them.
    pub async fn observe_long_tasks(&self) -> Result<()> {
        self.eval(
            "window.fashionLongTasks = [];
             new PerformanceObserver(list => fashionLongTasks.push(...list.getEntries().map(e => e.duration)))
                 .observe({ type: 'longtask' });",
            vec![],
        )
        .await?;
        Ok(())
    }

    /// The longest main-thread task since [`Browser::observe_long_tasks`], in ms (0 if none
    /// reached 50 ms).
    pub async fn longest_task_ms(&self) -> Result<f64> {
        Ok(self.eval("return Math.max(0, ...fashionLongTasks)", vec![]).await?.as_f64().unwrap_or(f64::NAN))
    }

    /// Polls `condition` (a JavaScript expression) until it is truthy.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let value = self.eval(&format!("return !!({condition});"), vec![]).await?;
            if value == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let errors =
                    self.eval("return [...document.querySelectorAll('[data-testid=error]')].map(e => e.textContent)", vec![]).await?;
                let badge = self.eval("return document.querySelector('[data-testid=backend]')?.textContent", vec![]).await?;
                bail!("timed out after {timeout:?} waiting for {condition}; badge {badge}, errors on the page: {errors}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Gives files to the page's upload input, as a user picking them would.
    /// From now on until the next navigation, keeps every file the page offers for download
    /// (the blob behind `URL.createObjectURL`, and the anchor's file name) for
    /// [`last_download`](Self::last_download).
    pub async fn capture_downloads(&self) -> Result<()> {
        self.eval(
            "window.__downloads = [];
             const create = URL.createObjectURL;
             URL.createObjectURL = blob => { window.__downloads.push({ blob }); return create.call(URL, blob); };
             const click = HTMLAnchorElement.prototype.click;
             HTMLAnchorElement.prototype.click = function () {
                 const last = window.__downloads.at(-1);
                 if (last && this.download) last.name = this.download;
                 return click.call(this);
             };",
            vec![],
        )
        .await?;
        Ok(())
    }

    /// The file name and bytes of the last download since [`capture_downloads`](Self::capture_downloads).
    pub async fn last_download(&self) -> Result<(String, Vec<u8>)> {
        let value = self
            .eval_promise(
                "(async () => { const d = window.__downloads.at(-1); if (!d) return null;
                   return { name: d.name ?? '', bytes: Array.from(new Uint8Array(await d.blob.arrayBuffer())) }; })()",
                vec![],
            )
            .await?;
        anyhow::ensure!(!value.is_null(), "nothing was offered for download");
        let bytes = value["bytes"].as_array().context("download bytes")?.iter().map(|v| v.as_u64().unwrap_or(0) as u8).collect();
        Ok((value["name"].as_str().unwrap_or_default().to_string(), bytes))
    }

    pub async fn upload(&self, paths: &[std::path::PathBuf]) -> Result<()> {
        self.choose_files("upload", paths).await
    }

    /// Gives files to the file input with `data-testid=testid`.
    pub async fn choose_files(&self, testid: &str, paths: &[std::path::PathBuf]) -> Result<()> {
        let joined = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n");
        self.client.find(Locator::Css(&format!("[data-testid={testid}]"))).await?.send_keys(&joined).await?;
        Ok(())
    }

    pub async fn close(mut self) -> Result<()> {
        let result = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        result.map_err(Into::into)
    }
}

/// Wraps `GPUDevice.createBuffer` and `GPUBuffer.destroy`. A buffer the page drops without
/// destroying is subtracted when the garbage collector frees it, so `liveBytes` is what the
/// tab holds in GPU buffers (an over-estimate until the collector runs, never an under-one).
const GPU_BUFFER_COUNTER: &str = r#"
(() => {
  if (!self.GPUDevice) return;
  const stats = self.fashionGpuBuffers = { created: 0, destroyed: 0, liveBytes: 0, peakLiveBytes: 0 };
  // Every device that made a buffer, so that a test can destroy them as a driver reset would.
  const devices = self.fashionGpuDevices = new Set();
  const sizes = new WeakMap();
  const release = (size) => { stats.destroyed += 1; stats.liveBytes -= size; };
  const collected = new FinalizationRegistry((cell) => { if (!cell.done) { cell.done = true; release(cell.size); } });
  const create = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (descriptor) {
    devices.add(this);
    const buffer = create.call(this, descriptor);
    const cell = { size: Number(descriptor.size), done: false };
    sizes.set(buffer, cell);
    collected.register(buffer, cell);
    stats.created += 1;
    stats.liveBytes += cell.size;
    stats.peakLiveBytes = Math.max(stats.peakLiveBytes, stats.liveBytes);
    return buffer;
  };
  const destroy = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function () {
    const cell = sizes.get(this);
    if (cell && !cell.done) { cell.done = true; release(cell.size); }
    return destroy.call(this);
  };
})();
"#;

/// A chromedriver extension command: one DevTools-protocol call.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
