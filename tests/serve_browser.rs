//! The page of `audience serve` in headless Chromium, driven over WebDriver: a typo is underlined
//! and its fix offered, the fixed segment's counts equal the command line's, it is saved and found
//! again after a reload, and its export is downloaded. The screenshot `tests/browser/serve.png` is
//! retaken when the page's sources change.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test says it is skipped and passes, so `cargo test` still works on a machine with no browser.

mod common;

use common::http::request;
use common::serve::{cli_count, Server, TOKEN};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long one step of the page (a check, a count, an export) may take on a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(15);

const TYPO: &str = "primaryDevise and pushRegistrationEnabled";
const FIXED: &str = "primaryDevice and pushRegistrationEnabled";
const NAME: &str = "push-primary";

#[test]
fn a_segment_is_fixed_counted_saved_and_exported_in_the_page() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        // Skipping is a choice the machine's owner makes, never a silent pass.
        let what = format!(
            "{} not found (apt-get install chromium chromium-driver, as .ci/run does)",
            missing.join(" and ")
        );
        if std::env::var_os("AUDIENCE_SKIP_BROWSER").is_some() {
            say(&format!(
                "SKIPPED serve_browser (AUDIENCE_SKIP_BROWSER): {what}"
            ));
            return;
        }
        panic!("{what}; set AUDIENCE_SKIP_BROWSER=1 to skip this test knowingly");
    }
    let server = Server::start(|_| {});
    let downloads = tempfile::tempdir().unwrap();
    let browser = Browser::start(downloads.path());

    browser.goto(&format!("http://{}/#token={TOKEN}", server.addr));
    // The snapshot line is filled in once the catalog has loaded: the page is ready.
    browser.wait("#snapshot-meta code");

    browser.wait("#segment").send_keys(TYPO);
    // The list is marked stale on every keystroke until the check of the current text answers.
    let suggestion =
        browser.wait("#diagnostics:not(.stale) .diagnostic[data-code=\"E020\"] .suggestion");
    assert_eq!(suggestion.text(), "primaryDevice");
    assert_eq!(
        browser.wait("#highlight .diag-error").text(),
        "primaryDevise"
    );
    suggestion.click();
    assert_eq!(
        browser.wait("#segment").property("value"),
        Value::from(FIXED)
    );

    let count = |id: &str| -> u64 {
        let shown = browser.wait(&format!("#{id}:not([data-value=\"\"])"));
        shown.attribute("data-value").unwrap().parse().unwrap()
    };
    assert_eq!(
        count("count-installations"),
        cli_count(&server.store, FIXED, "installations")
    );
    assert_eq!(
        count("count-persons"),
        cli_count(&server.store, FIXED, "persons")
    );
    browser.wait("#preview-table tbody tr");
    keep_screenshot(&browser.screenshot());

    browser.wait("#save-name").send_keys(NAME);
    browser.wait("#save").click();
    let saved = format!("#saved-list .saved-item[data-name=\"{NAME}\"]");
    browser.wait(&saved);
    browser.reload();
    browser.wait(&saved);

    browser.wait("#tab-export").click();
    browser.wait("#export-format option[value=\"csv\"]").click();
    browser
        .wait("#export-channel option[value=\"push\"]")
        .click();
    browser.wait("#export-start").click();
    let link = browser.wait("#export-progress a.download");
    let name = link.attribute("download").unwrap();
    link.click();
    // Chromium downloads into `<name>.crdownload` and renames it to `name` once it is whole.
    let downloaded = downloads.path().join(name);
    let csv = poll("the download", || std::fs::read_to_string(&downloaded).ok());
    let push = format!("({FIXED}) and pushRegistrationEnabled and state != \"uninstalled\"");
    assert_eq!(
        csv.lines().count() as u64 - 1,
        cli_count(&server.store, &push, "installations")
    );
}

/// Writes the screenshot and the hash of the page it shows when the page's sources no longer
/// hash to the committed value, so a run on an unchanged page leaves the checkout clean.
fn keep_screenshot(png: &[u8]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources: Vec<u8> = ["index.html", "app.js", "style.css"]
        .iter()
        .flat_map(|f| std::fs::read(root.join("src/serve/page").join(f)).unwrap())
        .collect();
    let hash = format!("{:016x}\n", fnv1a(&sources));
    let dir = root.join("tests/browser");
    let (image, hash_file) = (dir.join("serve.png"), dir.join("serve.page-hash"));
    if image.exists() && std::fs::read_to_string(&hash_file).is_ok_and(|h| h == hash) {
        return;
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&image, png).unwrap();
    std::fs::write(&hash_file, hash).unwrap();
    say(&format!(
        "serve_browser: the page changed, so it wrote {} (commit it)",
        image.display()
    ));
}

/// Writes to stderr past the test harness, which keeps what `eprintln!` prints unless a test
/// fails: a skipped test or a new screenshot must show in a passing run.
#[allow(clippy::explicit_write)] // eprintln! is what the harness captures
fn say(message: &str) {
    writeln!(std::io::stderr(), "{message}").unwrap();
}

/// 64-bit FNV-1a: a stable hash with no crate (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A WebDriver session in headless Chromium through its own chromedriver; both end when dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    /// Empty until the session is created, so that a failed start still stops chromedriver.
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(downloads: &Path) -> Browser {
        // A free port, released for chromedriver to take.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        poll("chromedriver to listen", || {
            TcpStream::connect(addr).ok().map(|_| ())
        });
        let profile = tempfile::tempdir().unwrap();
        // A fresh profile, a fixed window for the screenshot, nothing in the background that
        // reaches the network, and downloads saved into `downloads` without asking. No sandbox:
        // Chromium refuses to run as root with one, and CI runs as root in a container.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.command("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// One WebDriver command: its `value`, or a panic with the driver's error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = request(self.addr, method, path, &[], body.as_bytes());
        let value = reply.json()["value"].take();
        assert_eq!(
            reply.status, 200,
            "WebDriver {method} {path}: {} ({})",
            value["error"], value["message"]
        );
        value
    }

    /// A command on this session.
    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, body)
    }

    fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    fn reload(&self) {
        self.session("POST", "/refresh", Some(json!({})));
    }

    /// The first element matching `css`, once there is one.
    #[track_caller]
    fn wait(&self, css: &str) -> Element<'_> {
        let query = json!({"using": "css selector", "value": css});
        poll(css, || {
            let found = self.session("POST", "/elements", Some(query.clone()));
            let id = found.as_array()?.first()?[ELEMENT].as_str()?.to_string();
            Some(Element { browser: self, id })
        })
    }

    /// The viewport as PNG.
    fn screenshot(&self) -> Vec<u8> {
        let png = base64(self.session("GET", "/screenshot", None).as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session quits Chromium; only a running chromedriver can be asked to.
        let running = matches!(self.driver.try_wait(), Ok(None));
        if running && !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            request(self.addr, "DELETE", &path, &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element of the page, by its WebDriver reference.
struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/element/{}{path}", self.id);
        self.browser.session(method, &path, body)
    }

    fn click(&self) {
        self.command("POST", "/click", Some(json!({})));
    }

    /// Types `text` as key presses, so the page sees the input events a user's typing makes.
    fn send_keys(&self, text: &str) {
        self.command("POST", "/value", Some(json!({ "text": text })));
    }

    /// The rendered text.
    fn text(&self) -> String {
        let text = self.command("GET", "/text", None);
        text.as_str().unwrap().to_string()
    }

    /// An HTML attribute as written in the document.
    fn attribute(&self, name: &str) -> Option<String> {
        let value = self.command("GET", &format!("/attribute/{name}"), None);
        value.as_str().map(str::to_string)
    }

    /// A DOM property, such as a text area's current `value`.
    fn property(&self, name: &str) -> Value {
        self.command("GET", &format!("/property/{name}"), None)
    }
}

/// Calls `check` until it gives something, or panics after [`PATIENCE`] naming what it waited for.
#[track_caller]
fn poll<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(start.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Decodes standard base64 (WebDriver's screenshots): a few lines instead of a crate.
fn base64(text: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("{:?} is not a base64 digit", c as char),
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0);
    for c in text.bytes().take_while(|&c| c != b'=') {
        bits = (bits << 6) | u32::from(digit(c));
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}
