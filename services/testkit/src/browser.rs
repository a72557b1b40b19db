//! A real headless browser for page tests: Debian's Chromium driven through `chromedriver` with
//! the W3C WebDriver protocol, which is plain HTTP and JSON — so a small client of our own over
//! `reqwest` instead of a WebDriver crate and its dependency tree.
//!
//! Tests drive the page the way a person uses it: type, pick, attach a file, click, read what
//! is shown. Each [`Browser`] is its own `chromedriver` on a free loopback port with its own
//! Chromium profile in a temporary directory, so tests run in parallel and never share cookies;
//! dropping it ends the session (which closes Chromium), kills `chromedriver` and removes the
//! profile.
//!
//! The binaries are `$CHROMEDRIVER` (else `/usr/bin/chromedriver`) and `$CHROME_BIN` (else
//! `/usr/bin/chromium`), from the Debian packages `chromium-driver` and `chromium`, which
//! `scripts/test.sh` installs when they are missing.
//!
//! ```no_run
//! # async fn example() -> Result<(), jiesu_testkit::browser::BrowserError> {
//! use std::time::Duration;
//! use jiesu_testkit::browser::Browser;
//! let browser = Browser::phone().await?;
//! browser.goto("http://127.0.0.1:8080/mailbox").await?;
//! browser.find("input[name=title]").await?.send_keys("路灯不亮").await?;
//! browser.find("select[name=urgency]").await?.select_by_value("urgent").await?;
//! browser.find("input[type=file]").await?.upload("/tmp/photo.jpg").await?;
//! browser.find("button[type=submit]").await?.click().await?;
//! browser.wait_for_text("#receipt", "已受理", Duration::from_secs(5)).await?;
//! browser.screenshot("docs/img/mailbox-phone.png").await?;
//! # Ok(()) }
//! ```

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which W3C WebDriver carries an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `chromedriver` may take to answer `/status` as ready, and Chromium to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the `wait_for*` methods look again.
const POLL: Duration = Duration::from_millis(100);

/// What went wrong driving the browser. WebDriver's own errors keep its `error` code (`no such
/// element`, `element not interactable`, …) and `message`, which say exactly what the page did.
#[derive(thiserror::Error)]
pub enum BrowserError {
    /// A binary is not installed: the message names the Debian package that has it.
    #[error("{program} not found at {path}: install it with `apt-get install -y {package}` or set {env}")]
    Missing { program: &'static str, path: PathBuf, package: &'static str, env: &'static str },
    #[error("cannot start {path}: {source}")]
    Spawn { path: PathBuf, source: std::io::Error },
    /// `chromedriver` did not come up, or Chromium did not start; with the tail of its log.
    #[error("{what}; chromedriver's log ends with:\n{log}")]
    Start { what: String, log: String },
    /// The WebDriver command failed: its `error` code and `message`.
    #[error("WebDriver {command}: {error}: {message}")]
    WebDriver { command: String, error: String, message: String },
    /// [`Browser::find`] found nothing: the selector and the page it looked at.
    #[error("no element matches `{selector}` on {url}")]
    NotFound { selector: String, url: String },
    #[error("waited {timeout:?} for {what} on {url}")]
    Timeout { what: String, url: String, timeout: Duration },
    /// The page would not do it: `select_by_value` found no such option, or a disabled one.
    #[error("{0}")]
    Page(String),
    #[error("talking to chromedriver ({command}): {source}")]
    Http { command: String, source: reqwest::Error },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("unexpected WebDriver reply to {command}: {reply}")]
    Protocol { command: String, reply: String },
}

/// As the message: a test's `.expect(..)` then prints a sentence, not a struct.
impl std::fmt::Debug for BrowserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl BrowserError {
    /// WebDriver's error code (`no such element`, `stale element reference`, …), if it is one.
    pub fn webdriver_error(&self) -> Option<&str> {
        match self {
            Self::WebDriver { error, .. } => Some(error),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, BrowserError>;

/// A headless Chromium of the test's own, in one WebDriver session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`, chromedriver's address.
    base: String,
    /// The session's id; `None` once it has been deleted.
    session: Option<String>,
    driver: tokio::process::Child,
    /// Chromium's profile and chromedriver's log; removed on drop, after both have exited.
    dir: tempfile::TempDir,
}

impl Browser {
    /// A desktop-sized window (1280×900).
    pub async fn start() -> Result<Self> {
        Self::launch(None).await
    }

    /// A phone: Chromium's mobile emulation of a 390×844 screen at device pixel ratio 3, with
    /// touch and a mobile viewport — so `<meta name="viewport">` and media queries behave as on
    /// a phone, which a narrow desktop window does not do. A page without that meta tag is laid
    /// out 980 pixels wide, as a real phone would.
    pub async fn phone() -> Result<Self> {
        Self::launch(Some((390, 844))).await
    }

    async fn launch(phone: Option<(u32, u32)>) -> Result<Self> {
        let driver_bin = binary("chromedriver", "CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver")?;
        let chrome_bin = binary("chromium", "CHROME_BIN", "/usr/bin/chromium", "chromium")?;
        let dir = tempfile::Builder::new()
            .prefix("jiesu-chromium-")
            .tempdir()
            .map_err(|source| BrowserError::Io { context: "create a temporary Chromium profile".into(), source })?;
        // chromedriver speaks plain HTTP, but the workspace builds reqwest with rustls and no
        // provider of its own (the kit's choice), and building a client then needs one installed.
        jiesu_kit::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            // A hung page must fail the test, not the CI job's clock; page loads have their own 30 s.
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| BrowserError::Http { command: "build the HTTP client".into(), source })?;

        // The port was free a moment ago; another test may have taken it since, and then our
        // chromedriver exits at once: take another.
        let mut attempt = 0;
        let (driver, base) = loop {
            attempt += 1;
            let port = crate::free_port();
            let log = std::fs::File::create(dir.path().join("chromedriver.log"))
                .map_err(|source| BrowserError::Io { context: "create chromedriver's log".into(), source })?;
            let log2 = log.try_clone().map_err(|source| BrowserError::Io { context: "open chromedriver's log".into(), source })?;
            let mut driver = tokio::process::Command::new(&driver_bin)
                .arg(format!("--port={port}"))
                // Chromium's own stderr in the log: why it exited, when it does at start.
                .arg("--enable-chrome-logs")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| BrowserError::Spawn { path: driver_bin.clone(), source })?;
            let base = format!("http://127.0.0.1:{port}");
            match wait_ready(&http, &base, &mut driver).await {
                Ok(()) => break (driver, base),
                Err(_) if attempt < 5 && matches!(driver.try_wait(), Ok(Some(_))) => continue,
                Err(what) => return Err(BrowserError::Start { what, log: log_tail(dir.path()) }),
            }
        };

        let profile = dir.path().join("profile");
        let mut options = json!({
            "binary": chrome_bin,
            "args": [
                "--headless=new",
                // Chromium refuses to start as root with its sandbox ("Running as root without
                // --no-sandbox is not supported"), and containers lack the namespaces it needs.
                "--no-sandbox",
                "--disable-gpu",
                // /dev/shm is tiny in containers; Chromium then crashes drawing large pages.
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some((width, height)) = phone {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3.0, "mobile": true, "touch": true } });
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "timeouts": { "pageLoad": 30_000, "script": 30_000, "implicit": 0 },
        } } });
        let mut browser = Self { http, base, session: None, driver, dir };
        let reply = match browser.send(reqwest::Method::POST, "/session".into(), Some(capabilities)).await {
            Ok(reply) => reply,
            Err(e) => return Err(BrowserError::Start { what: e.to_string(), log: log_tail(browser.dir.path()) }),
        };
        let id = reply["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Protocol { command: "POST /session".into(), reply: reply.to_string() })?;
        browser.session = Some(id.to_string());
        Ok(browser)
    }

    /// Resizes the window, e.g. to see a layout at another width without mobile emulation.
    /// Headless Chromium has no window decorations, so `window.innerWidth` becomes `width`.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({ "width": width, "height": height })).await.map(drop)
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn current_url(&self) -> Result<String> {
        string(self.get("/url").await?, "GET /url")
    }

    pub async fn title(&self) -> Result<String> {
        string(self.get("/title").await?, "GET /title")
    }

    /// The current DOM serialised as HTML (not the bytes the server sent).
    pub async fn page_source(&self) -> Result<String> {
        string(self.get("/source").await?, "GET /source")
    }

    /// Runs `script` as the body of a function in the page, with `args` as `arguments` (pass an
    /// element with [`Element::to_arg`]), and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Saves what the viewport shows as a PNG at `path` (its directory must exist).
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let encoded = string(self.get("/screenshot").await?, "GET /screenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| BrowserError::Protocol { command: "GET /screenshot".into(), reply: format!("not base64: {e}") })?;
        tokio::fs::write(path, png)
            .await
            .map_err(|source| BrowserError::Io { context: format!("write the screenshot {}", path.display()), source })
    }

    /// The first element matching the CSS selector, now; [`Browser::wait_for`] waits for it.
    pub async fn find(&self, css: &str) -> Result<Element<'_>> {
        match self.post("/element", json!({ "using": "css selector", "value": css })).await {
            Ok(reply) => Element::from_reply(self, reply, "POST /element"),
            Err(e) if e.webdriver_error() == Some("no such element") => {
                Err(BrowserError::NotFound { selector: css.to_string(), url: self.current_url().await.unwrap_or_default() })
            }
            Err(e) => Err(e),
        }
    }

    /// Every element matching the CSS selector, in document order; empty when none does.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let reply = self.post("/elements", json!({ "using": "css selector", "value": css })).await?;
        let Value::Array(items) = reply else {
            return Err(BrowserError::Protocol { command: "POST /elements".into(), reply: reply.to_string() });
        };
        items.into_iter().map(|item| Element::from_reply(self, item, "POST /elements")).collect()
    }

    /// Waits until an element matches the CSS selector: pages change after a click or an htmx
    /// swap, and a test must wait on what it expects to see, never on a sleep.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>> {
        let started = Instant::now();
        loop {
            match self.find(css).await {
                Err(BrowserError::NotFound { url, .. }) if started.elapsed() >= timeout => {
                    return Err(BrowserError::Timeout { what: format!("an element matching `{css}`"), url, timeout });
                }
                Err(BrowserError::NotFound { .. }) => tokio::time::sleep(POLL).await,
                found => return found,
            }
        }
    }

    /// Waits until the first element matching the CSS selector shows a text containing `text`;
    /// the error says what it showed instead.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> Result<Element<'_>> {
        let started = Instant::now();
        let mut shown = None;
        loop {
            match self.find(css).await {
                Ok(element) => match element.text().await {
                    Ok(now) if now.contains(text) => return Ok(element),
                    Ok(now) => shown = Some(now),
                    // Replaced between finding and reading: look again.
                    Err(e) if e.webdriver_error() == Some("stale element reference") => {}
                    Err(e) => return Err(e),
                },
                Err(BrowserError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() >= timeout {
                let what = match shown {
                    Some(shown) => format!("`{css}` to show “{text}” (it shows “{shown}”)"),
                    None => format!("`{css}` to show “{text}” (no element matches)"),
                };
                return Err(BrowserError::Timeout { what, url: self.current_url().await.unwrap_or_default(), timeout });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the session and closes Chromium, waiting for it; dropping the browser does the same
    /// without waiting for the answer.
    pub async fn quit(mut self) -> Result<()> {
        if self.session.is_some() {
            let path = self.session_path("");
            self.session = None;
            self.send(reqwest::Method::DELETE, path, None).await?;
        }
        Ok(())
    }

    fn session_path(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session.as_deref().unwrap_or("-"))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(reqwest::Method::GET, self.session_path(path), None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(reqwest::Method::POST, self.session_path(path), Some(body)).await
    }

    /// One WebDriver command: its reply's `value`, or its error as [`BrowserError::WebDriver`].
    async fn send(&self, method: reqwest::Method, path: String, body: Option<Value>) -> Result<Value> {
        let command = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let http = |source| BrowserError::Http { command: command.clone(), source };
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let mut reply: Value = response.json().await.map_err(http)?;
        let value = reply.get_mut("value").map(Value::take).unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            let message = value.get("message").and_then(Value::as_str).unwrap_or_default();
            return Err(BrowserError::WebDriver { command, error: error.to_string(), message: message.to_string() });
        }
        if !status.is_success() {
            return Err(BrowserError::Protocol { command, reply: format!("{status}: {reply}") });
        }
        Ok(value)
    }
}

impl Drop for Browser {
    /// Deletes the session so that chromedriver closes Chromium — killing chromedriver alone
    /// would leave Chromium running — then kills chromedriver; the profile goes with `dir`.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Drop cannot await, and may run outside a runtime or while a test unwinds: a
            // blocking request by hand, bounded in time, is the dependable way.
            let _ = delete_blocking(&self.base, &format!("/session/{session}"));
        }
        let _ = self.driver.start_kill();
        // Reap it, so that Chromium's profile is no longer written to when `dir` is removed.
        let started = Instant::now();
        while matches!(self.driver.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An element of the page, as WebDriver refers to it. It goes stale when the page replaces it;
/// find it again then.
#[derive(Clone)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Element").field(&self.id).finish()
    }
}

impl<'b> Element<'b> {
    fn from_reply(browser: &'b Browser, reply: Value, command: &str) -> Result<Self> {
        match reply.get(ELEMENT_KEY).and_then(Value::as_str) {
            Some(id) => Ok(Self { browser, id: id.to_string() }),
            None => Err(BrowserError::Protocol { command: command.into(), reply: reply.to_string() }),
        }
    }

    /// This element as an argument of [`Browser::execute`].
    pub fn to_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn path(&self, path: &str) -> String {
        format!("/element/{}{path}", self.id)
    }

    /// Clicks its centre, as a person would: fails if something covers it or it is hidden.
    pub async fn click(&self) -> Result<()> {
        self.browser.post(&self.path("/click"), json!({})).await.map(drop)
    }

    /// Types `text` into it (focusing it first), after what is already there.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.browser.post(&self.path("/value"), json!({ "text": text })).await.map(drop)
    }

    /// Empties an input or text area.
    pub async fn clear(&self) -> Result<()> {
        self.browser.post(&self.path("/clear"), json!({})).await.map(drop)
    }

    /// The text it shows, as rendered (hidden text left out).
    pub async fn text(&self) -> Result<String> {
        string(self.browser.get(&self.path("/text")).await?, "GET element text")
    }

    /// The HTML attribute as written in the markup; `None` when absent.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>> {
        let value = self.browser.get(&self.path(&format!("/attribute/{name}"))).await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// The DOM property (`checked`, `value`, `files`, …), which follows what the user did.
    pub async fn property(&self, name: &str) -> Result<Value> {
        self.browser.get(&self.path(&format!("/property/{name}"))).await
    }

    /// The `value` property: what an input holds now (empty when it has none).
    pub async fn value(&self) -> Result<String> {
        Ok(self.property("value").await?.as_str().unwrap_or_default().to_string())
    }

    /// Attaches a file to an `<input type="file">`.
    pub async fn upload(&self, path: impl AsRef<Path>) -> Result<()> {
        self.upload_files([path]).await
    }

    /// Attaches several files to an `<input type="file" multiple>`. WebDriver attaches files by
    /// typing their absolute paths, one a line, into the input; chromedriver reads them from
    /// its own disk — the same machine here. Replaces any files attached before.
    pub async fn upload_files<P: AsRef<Path>>(&self, paths: impl IntoIterator<Item = P>) -> Result<()> {
        let mut lines = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let absolute = std::fs::canonicalize(path)
                .map_err(|source| BrowserError::Io { context: format!("the file to upload {}", path.display()), source })?;
            lines.push(absolute.to_string_lossy().into_owned());
        }
        self.send_keys(&lines.join("\n")).await
    }

    pub async fn is_displayed(&self) -> Result<bool> {
        let value = self.browser.get(&self.path("/displayed")).await?;
        value.as_bool().ok_or_else(|| BrowserError::Protocol { command: "GET element displayed".into(), reply: value.to_string() })
    }

    /// Picks the `<option>` of this `<select>` whose value is `value`, firing `input` and
    /// `change` as a person's choice does. By script: clicking an option of a closed drop-down
    /// is not what a person does, and mobile emulation opens no list to click in.
    pub async fn select_by_value(&self, value: &str) -> Result<()> {
        const SCRIPT: &str = r#"
            const [select, value] = arguments;
            if (!(select instanceof HTMLSelectElement)) return `it is a <${select.localName}>, not a <select>`;
            if (select.disabled) return "the <select> is disabled";
            const option = Array.from(select.options).find(o => o.value === value);
            if (!option) return `it has no option of value “${value}” (it has: ${Array.from(select.options).map(o => o.value).join(", ")})`;
            if (option.disabled) return `its option “${value}” is disabled`;
            option.selected = true;
            select.dispatchEvent(new Event("input", { bubbles: true }));
            select.dispatchEvent(new Event("change", { bubbles: true }));
            return null;
        "#;
        match self.browser.execute(SCRIPT, vec![self.to_arg(), json!(value)]).await? {
            Value::Null => Ok(()),
            Value::String(why) => Err(BrowserError::Page(format!("cannot select “{value}”: {why}"))),
            other => Err(BrowserError::Protocol { command: "select_by_value".into(), reply: other.to_string() }),
        }
    }
}

/// `$env`, else `default`, which must exist.
fn binary(program: &'static str, env: &'static str, default: &str, package: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    if path.is_file() { Ok(path) } else { Err(BrowserError::Missing { program, path, package, env }) }
}

/// Waits until chromedriver's `/status` says it is ready; the reason when it does not.
async fn wait_ready(http: &reqwest::Client, base: &str, driver: &mut tokio::process::Child) -> std::result::Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited at start ({status})"));
        }
        let reply = match http.get(format!("{base}/status")).timeout(Duration::from_secs(2)).send().await {
            Ok(response) => response.json::<Value>().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        if reply["value"]["ready"] == json!(true) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("chromedriver at {base} was not ready within {START_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn string(value: Value, command: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(BrowserError::Protocol { command: command.into(), reply: other.to_string() }),
    }
}

/// `DELETE path` to chromedriver with a blocking socket: for [`Drop`], which cannot await.
fn delete_blocking(base: &str, path: &str) -> std::io::Result<()> {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    // Closing Chromium takes a moment; past this, the kill and the temp dir's removal follow anyway.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    // chromedriver answers once Chromium is closed, and keeps the connection open whatever the
    // request says: the end of the headers is the answer, not the end of the stream.
    let mut reply = Vec::new();
    let mut buf = [0; 1024];
    while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf)? {
            0 => break,
            n => reply.extend_from_slice(&buf[..n]),
        }
    }
    Ok(())
}
