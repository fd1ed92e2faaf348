//! What the browser tests share: finding Chromium (or saying once that the
//! tests were not run), a real server on 127.0.0.1:0 with roles enforced,
//! and a tab with helpers that wait for what a person would see.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::{Browser as Cdp, Emulation, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};
use tenant_service::{App, Settings};
use tokio::sync::oneshot;

/// Overrides where Chromium is looked for (set it to a missing path to see
/// the tests skip).
pub const CHROMIUM_ENV: &str = "TENANT_TEST_CHROMIUM";

/// The platform admin every test server trusts.
pub const ROOT: &str = "root";

/// How long a page may take to show what a step waits for. Generous: the
/// machine running the suite may be busy with other builds.
const PATIENCE: Duration = Duration::from_secs(30);

/// Chromium's path, or `None` after saying (once per test run, whatever the
/// number of tests) that the browser tests were not run and how to run them.
pub fn chromium() -> Option<PathBuf> {
    static SAID: Once = Once::new();
    super::optional::find(
        CHROMIUM_ENV,
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        &SAID,
        |path| {
            format!(
                "console browser tests NOT run: no Chromium at {path} (install it with `apt-get install -y chromium`, \
                 then run `cargo test --test console`; `.ci/run` installs it)"
            )
        },
    )
}

/// A real server (the library's `App`, as `main` starts it) on an ephemeral
/// port, with a temporary data dir; stopped gracefully on drop.
pub struct Server {
    pub base: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Roles enforced, `root` a platform admin; `configure` adjusts the rest.
    pub fn start(configure: impl FnOnce(&mut Settings)) -> Server {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        settings.auth.enforce_roles = true;
        settings.auth.platform_admins = vec![ROOT.to_owned()];
        configure(&mut settings);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let app = App::open(&settings).unwrap_or_else(|e| panic!("open: {e}"));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = rt.spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap_or_else(|e| panic!("serve: {e}"));
        });
        Server {
            base: format!("http://{addr}"),
            rt,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// One API call as `user` (header mode), for setting up what the
    /// browser then looks at. Panics on anything but `expect`.
    pub fn call(&self, user: &str, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let url = format!("{}/api/v1{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut req = self.client.request(method, url).header("X-User-ID", user);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.rt.block_on(async {
            let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(status, expect, "{path}: {body}");
            body
        })
    }

    pub fn post(&self, user: &str, path: &str, body: Value) -> Value {
        self.call(user, "POST", path, Some(body), 201)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.rt.block_on(task);
        }
    }
}

/// A district with two schools, seats in both, a threshold crossed in one,
/// and roles: `dana` admin of the district, `tess` teacher in North.
pub struct Seeded {
    pub district: u64,
    pub north: u64,
    pub south: u64,
}

pub fn seed(server: &Server) -> Seeded {
    let district = id(&server.post(ROOT, "/district", json!({"name": "Shelbyville District"})));
    let north = id(&server.post(
        ROOT,
        &format!("/district/{district}/schools"),
        json!({"name": "North Elementary"}),
    ));
    let south = id(&server.post(
        ROOT,
        &format!("/district/{district}/schools"),
        json!({"name": "South Middle School"}),
    ));
    server.post(ROOT, "/seats/purchase", json!({"tenant_id": north, "count": 12}));
    server.post(ROOT, "/seats/purchase", json!({"tenant_id": south, "count": 8}));
    server.call(
        ROOT,
        "PUT",
        &format!("/tenant/{south}/alert-threshold"),
        Some(json!({"percent": 70})),
        200,
    );
    server.call(
        ROOT,
        "POST",
        "/seats/assign/bulk",
        Some(json!({"tenant_id": south, "learner_ids": ["s1", "s2", "s3", "s4", "s5", "s6"]})),
        200,
    );
    server.post(
        ROOT,
        "/roles",
        json!({"user_id": "dana", "tenant_id": district, "role": "admin"}),
    );
    server.post(
        ROOT,
        "/roles",
        json!({"user_id": "tess", "tenant_id": north, "role": "teacher"}),
    );
    Seeded { district, north, south }
}

fn id(v: &Value) -> u64 {
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// Headless Chromium with one tab. Nothing it loads may leave the machine:
/// every non-loopback request goes to a proxy that is not there.
pub struct Console {
    // Dropped after the tab: closing the browser ends its process.
    pub tab: Arc<Tab>,
    _browser: Browser,
    shots: PathBuf,
    pub downloads: tempfile::TempDir,
    width: u32,
    height: u32,
}

impl Console {
    pub fn open(chromium: &Path) -> Console {
        let args: Vec<&OsStr> = [
            "--proxy-server=http://127.0.0.1:9",
            "--no-first-run",
            "--disable-sync",
            "--disable-component-update",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--font-render-hinting=none",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions {
            path: Some(chromium.to_path_buf()),
            headless: true,
            // Tests run as root in CI containers, where the sandbox cannot start.
            sandbox: false,
            window_size: Some((1280, 800)),
            idle_browser_timeout: Duration::from_secs(120),
            args,
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options).unwrap_or_else(|e| panic!("chromium did not start: {e}"));
        let tab = browser.new_tab().unwrap_or_else(|e| panic!("tab: {e}"));
        tab.set_default_timeout(PATIENCE);
        let downloads = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        tab.call_method(Cdp::SetDownloadBehavior {
            behavior: Cdp::SetDownloadBehaviorBehaviorOption::Allow,
            browser_context_id: None,
            download_path: Some(downloads.path().display().to_string()),
            events_enabled: None,
        })
        .unwrap_or_else(|e| panic!("download behaviour: {e}"));
        // target/ui-screenshots (CARGO_TARGET_TMPDIR is target/tmp).
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap_or_else(|| Path::new("target"))
            .join("ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{}: {e}", shots.display()));
        let console = Console {
            tab,
            _browser: browser,
            shots,
            downloads,
            width: 1280,
            height: 800,
        };
        console.viewport(1280, 800)
    }

    /// The page's size in CSS pixels: 1280x800 (desktop) or 390x844 (a phone).
    pub fn viewport(mut self, width: u32, height: u32) -> Console {
        self.width = width;
        self.height = height;
        self.metrics(height);
        self
    }

    fn metrics(&self, height: u32) {
        self.tab
            .call_method(Emulation::SetDeviceMetricsOverride {
                width: self.width,
                height,
                device_scale_factor: 1.0,
                mobile: self.width < 600,
                scale: None,
                screen_width: None,
                screen_height: None,
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            })
            .unwrap_or_else(|e| panic!("viewport: {e}"));
    }

    /// Loads `url` afresh, as typing it in the address bar does. (Only the
    /// `#...` differing from the current page would be no load at all, and
    /// no load event to wait for: so through a blank page.)
    pub fn goto(&self, url: &str) {
        for url in ["about:blank", url] {
            self.tab
                .navigate_to(url)
                .unwrap_or_else(|e| panic!("navigate {url}: {e}"));
            self.tab
                .wait_until_navigated()
                .unwrap_or_else(|e| panic!("navigate {url}: {e}"));
        }
    }

    /// Evaluates `js` in the page and returns its value (JSON).
    pub fn eval(&self, js: &str) -> Value {
        let wrapped = format!("JSON.stringify((() => {{ {js} }})())");
        let remote = self
            .tab
            .evaluate(&wrapped, false)
            .unwrap_or_else(|e| panic!("evaluate {js}: {e}"));
        match remote.value {
            Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Waits until `js` (a function body returning a truthy value) holds, and
    /// returns that value; on timeout fails with the page's visible text.
    pub fn wait_for(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.eval(js);
            let truthy = !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what} at {}; the page shows:\n{}",
                    self.tab.get_url(),
                    self.text("body")
                );
            }
            // Polling the page for a condition, not sleeping past a race: the
            // wait ends as soon as the page shows it.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an element that matches `selector` and is shown.
    pub fn wait_visible(&self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        self.wait_for(
            selector,
            &format!("const e = document.querySelector({sel}); return !!e && e.offsetParent !== null;"),
        );
    }

    /// Waits until the element's visible text contains `needle`.
    pub fn wait_text(&self, selector: &str, needle: &str) {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let want = serde_json::to_string(needle).unwrap_or_default();
        self.wait_for(
            &format!("{selector} to show {needle:?}"),
            &format!("const e = document.querySelector({sel}); return !!e && e.innerText.includes({want});"),
        );
    }

    /// The visible text of the first element matching `selector` ("" if none).
    pub fn text(&self, selector: &str) -> String {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        self.eval(&format!(
            "const e = document.querySelector({sel}); return e ? e.innerText : '';"
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub fn click(&self, selector: &str) {
        self.wait_visible(selector);
        self.tab
            .find_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Types into a field as a person does, key by key.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.wait_visible(selector);
        self.tab
            .find_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("focus {selector}: {e}"));
        self.tab.type_str(text).unwrap_or_else(|e| panic!("type: {e}"));
    }

    /// Puts text in a field at once, as pasting does.
    pub fn paste(&self, selector: &str, text: &str) {
        self.wait_visible(selector);
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let value = serde_json::to_string(text).unwrap_or_default();
        self.eval(&format!(
            "const e = document.querySelector({sel}); e.focus(); e.value = {value}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); return true;"
        ));
    }

    pub fn press(&self, key: &str) {
        self.tab.press_key(key).unwrap_or_else(|e| panic!("key {key}: {e}"));
    }

    /// A file chosen in an `<input type=file>`.
    pub fn choose_file(&self, selector: &str, path: &Path) {
        self.wait_visible(selector);
        let path = path.display().to_string();
        self.tab
            .find_element(selector)
            .and_then(|e| e.set_input_files(&[path.as_str()]).map(|_| ()))
            .unwrap_or_else(|e| panic!("file {selector}: {e}"));
    }

    /// The seat count a tile shows (`free`, `assigned`, ...).
    pub fn tile(&self, kind: &str) -> String {
        self.text(&format!("#counts [data-count={kind}] .value"))
    }

    pub fn wait_tile(&self, kind: &str, value: &str) {
        self.wait_text(&format!("#counts [data-count={kind}] .value"), value);
        assert_eq!(self.tile(kind), value, "{kind} tile");
    }

    /// A screenshot of the whole page (not only the viewport) as
    /// target/ui-screenshots/`name`.png.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let full = self
            .eval("return Math.ceil(document.documentElement.scrollHeight);")
            .as_u64()
            .unwrap_or(u64::from(self.height)) as u32;
        self.metrics(full.clamp(self.height, 6000));
        let png = self
            .tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        self.metrics(self.height);
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Nothing on the page is wider than the viewport (no sideways scroll of
    /// the page itself; wide tables scroll inside their own box).
    pub fn assert_fits_width(&self, page: &str) {
        let overflow = self.eval(
            "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth;",
        );
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{page} is {overflow} px wider than a {} px screen",
            self.width
        );
    }

    /// The page's visible text holds no raw JSON of an error body.
    pub fn assert_no_raw_json(&self) {
        let all = self.text("body");
        assert!(
            !all.contains("error_code") && !all.contains("{\"") && !all.contains("\"detail\""),
            "the page shows raw JSON:\n{all}"
        );
    }

    /// A file the browser downloaded, once it is complete.
    pub fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + PATIENCE;
        loop {
            // Chromium writes `name.crdownload` and renames it when done.
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("{name} was not downloaded; the page shows:\n{}", self.text("main"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
