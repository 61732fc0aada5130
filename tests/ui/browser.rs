//! A real browser for the page tests: Debian's chromium, headless, driven
//! through its own chromedriver (one per browser, on a free port) with
//! fantoccini. Every page a journey visits is checked the same way
//! ([`Browser::check`]): no console error, no request to another origin,
//! no `serious` or `critical` accessibility violation (axe-core, vendored
//! from npm, injected by WebDriver: not subject to the page's CSP), and a
//! screenshot at desktop width and at a 390 px phone width under
//! `target/ui-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// axe-core 4.14.1 (MPL-2.0), from the npm package's `axe.min.js`.
const AXE: &str = include_str!("vendor/axe-4.14.1.min.js");

/// Where the screenshots go: `target/ui-screenshots/`.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/ui-screenshots");
    dir
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One browser (its own profile: cookies of its own) on `base` (the
/// server's port).
pub struct Browser {
    pub client: Client,
    port: u16,
    _driver: Driver,
    _profile: Profile,
}

/// The browser's own profile directory, removed when dropped.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `POST /session/{id}/se/log`: chromedriver's browser log (console
/// messages, failed loads, CSP violations) since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.into()),
        )
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A fresh headless chromium for pages served on `port`.
    pub async fn new(port: u16) -> Self {
        let driver_port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver: the browser tests need Debian's chromium and chromium-driver \
                 (.ci/run installs them: apt-get install chromium chromium-driver)",
            );
        let driver = Driver(child);
        let profile = Profile(
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("chromium-{}", bulkhead::secret::random_hex(6))),
        );
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.0.display()),
            ]}),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{driver_port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        Self {
            client,
            port,
            _driver: driver,
            _profile: profile,
        }
    }

    /// `http://<host>:<port><path>`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    pub async fn open(&self, host: &str, path: &str) {
        self.client.goto(&self.url(host, path)).await.unwrap();
    }

    /// The page's path now.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` and waits for the next page to have loaded (a new
    /// document, complete).
    pub async fn click(&self, css: &str) {
        self.client
            .execute(
                "document.documentElement.dataset.left = '1'; return true;",
                vec![],
            )
            .await
            .unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .client
                .execute(
                    "return document.documentElement.dataset.left !== '1'
                        && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .unwrap_or(json!(false));
            if loaded == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no page loaded after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks `css` where that loads nothing (a radio button, a box).
    pub async fn tick(&self, css: &str) {
        let found = self.client.find(Locator::Css(css)).await.unwrap();
        found.click().await.unwrap();
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let found = self.client.find(Locator::Css(css)).await.unwrap();
        found.text().await.unwrap()
    }

    /// Waits (10 s at most) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
    }

    /// Clicks the button whose text (its visible and screen-reader text)
    /// is `name`, without waiting for a page: htmx may answer in place.
    pub async fn click_button_named(&self, name: &str) {
        let buttons = self.client.find_all(Locator::Css("button")).await.unwrap();
        for button in buttons {
            let text: String = self
                .client
                .execute(
                    "return arguments[0].textContent;",
                    vec![serde_json::to_value(&button).unwrap()],
                )
                .await
                .unwrap()
                .as_str()
                .unwrap_or("")
                .to_string();
            if text.trim() == name {
                return button.click().await.unwrap();
            }
        }
        panic!("no button named {name:?}");
    }

    /// The checks every page passes (see the module), named `name` in the
    /// screenshots.
    pub async fn check(&self, name: &str) {
        let c = &self.client;
        // Nothing from another origin: every resource this page loaded.
        let foreign = c
            .execute(
                "return performance.getEntriesByType('resource')
                    .map(e => e.name).filter(u => new URL(u).origin !== location.origin);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(foreign, json!([]), "{name}: requests to another origin");
        // Accessibility: nothing serious or critical.
        c.execute(&format!("{AXE}\n;return true;"), vec![])
            .await
            .unwrap();
        let found = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations
                        .filter(v => v.impact === 'serious' || v.impact === 'critical')
                        .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                    nodes: v.nodes.map(n => n.html).slice(0, 3)}))))
                    .catch(e => done([{id: 'axe failed', help: String(e)}]));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(found, json!([]), "{name}: accessibility violations");
        // No console error (CSP violations, failed loads, script errors).
        let log = c.issue_cmd(BrowserLog).await.unwrap();
        let errors: Vec<&Value> = log
            .as_array()
            .map(|a| a.iter().filter(|e| e["level"] == "SEVERE").collect())
            .unwrap_or_default();
        // The page itself answered with its 4xx on purpose (an error page,
        // a failed log-in shown again): chromium logs that load, and it is
        // no error of the page's. A sub-resource's 4xx still is.
        let here = c.current_url().await.unwrap().to_string();
        let errors: Vec<&&Value> = errors
            .iter()
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or("");
                !(message.starts_with(&format!("{here} - Failed to load resource"))
                    && message.contains("status of 4"))
            })
            .collect();
        assert!(errors.is_empty(), "{name}: console errors {errors:?}");
        // Screenshots, desktop and phone.
        let dir = screenshots();
        std::fs::write(
            dir.join(format!("{name}.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        c.set_window_size(390, 844).await.unwrap();
        std::fs::write(
            dir.join(format!("{name}-phone.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        c.set_window_size(1280, 900).await.unwrap();
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
