//! `serve()` as a process: the env contract, start-up failures, SIGTERM → drain → exit 0.
//!
//! The test binary re-runs itself with `--ignored --exact child_entry`, where `child_entry`
//! calls `kiln_runtime::serve` on a gateway without routes.

mod support;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    time::Duration,
};

use kiln_runtime::{
    ctx::MatchInfo, router::RouteRequest, BuildInfo, Ctx, Gateway, Request, Response, RouteSpec,
    ServiceSpec, StartupError,
};
use support::*;

struct ChildGw;

impl Gateway for ChildGw {
    const INFO: BuildInfo = BuildInfo {
        source: "child.yml",
        config_sha256: "feedface",
        kiln_version: "0.0.0-test",
    };

    fn init() -> Result<Self, StartupError> {
        match std::env::var("KILN_TEST_INIT").as_deref() {
            Ok("fail") => Err(StartupError("secret FOO missing".into())),
            _ => Ok(ChildGw),
        }
    }

    fn route(&self, _: &RouteRequest<'_>) -> Option<MatchInfo> {
        None
    }

    fn routes(&self) -> &'static [RouteSpec] {
        &[]
    }

    fn services(&self) -> &'static [ServiceSpec] {
        &[]
    }

    async fn handle(&self, _: u32, cx: &mut Ctx, req: &mut Request) -> Response {
        kiln_runtime::proxy::no_service(cx, req.headers())
    }
}

/// Not a test of its own: the body of the child process.
#[test]
#[ignore = "run by the other tests as a child process"]
fn child_entry() {
    let code = kiln_runtime::serve::<ChildGw>();
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

struct Child {
    /// `None` once waited for.
    proc: Option<std::process::Child>,
    lines: mpsc::Receiver<String>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // A failed assertion must not leave our child running.
        if let Some(mut p) = self.proc.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn spawn(env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "child_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .env("KILN_WORKERS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = cmd.spawn().expect("spawn child");
    let stderr = proc.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Child {
        proc: Some(proc),
        lines,
    }
}

impl Child {
    fn line(&self) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(30)).ok()
    }

    /// Exit code, waiting at most 30 s, and the stderr lines not read yet.
    fn wait(mut self) -> (Option<i32>, Vec<String>) {
        let mut proc = self.proc.take().expect("not waited for yet");
        let pid = proc.id().to_string();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = proc.wait();
            let _ = tx.send(status.map(|s| s.code()));
            proc
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(status) => {
                let _ = waiter.join();
                let code = status.expect("wait");
                // stderr closes when the child exits: read what is left
                let rest = self.lines.iter().collect();
                (code, rest)
            }
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("child did not exit within 30 s");
            }
        }
    }

    fn pid(&self) -> u32 {
        self.proc.as_ref().map_or(0, std::process::Child::id)
    }
}

fn addr_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {line}"))
        + marker.len()..];
    let end = rest.find(',').unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let child = spawn(&[
        ("KILN_PROXY_LISTEN", "127.0.0.1:0"),
        ("KILN_STATUS_LISTEN", "127.0.0.1:0"),
    ]);
    let line = child.line().expect("startup line");
    assert!(
        line.contains("serving child.yml (sha256 feedface)"),
        "{line}"
    );
    let proxy = addr_after(&line, " on http://");
    let status = addr_after(&line, "status on http://");
    assert_ne!(proxy.port(), 0, "the log names the bound port");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(within(async {
        assert_eq!(get(status, "s", "/health", &[]).await.status, 200);
        let got = get(proxy, "h", "/", &[]).await;
        assert_eq!(got.status, 404);
        assert_eq!(got.json()["message"], "no Route matched with those values");
    }));

    let pid = child.pid().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (code, rest) = child.wait();
    assert_eq!(code, Some(0), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("drained")), "{rest:?}");
}

#[test]
fn init_failure_exits_one() {
    let child = spawn(&[
        ("KILN_TEST_INIT", "fail"),
        ("KILN_PROXY_LISTEN", "127.0.0.1:0"),
        ("KILN_STATUS_LISTEN", "127.0.0.1:0"),
    ]);
    let (code, lines) = child.wait();
    assert_eq!(code, Some(1));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("start-up failed: secret FOO missing")),
        "{lines:?}"
    );
}

#[test]
fn bind_failure_exits_one() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let child = spawn(&[
        ("KILN_PROXY_LISTEN", &addr),
        ("KILN_STATUS_LISTEN", "127.0.0.1:0"),
    ]);
    let (code, lines) = child.wait();
    assert_eq!(code, Some(1));
    let want = format!("cannot listen on {addr} (KILN_PROXY_LISTEN)");
    assert!(lines.iter().any(|l| l.contains(&want)), "{lines:?}");
}

#[test]
fn bad_env_exits_one() {
    let child = spawn(&[("KILN_WORKERS", "zero")]);
    let (code, lines) = child.wait();
    assert_eq!(code, Some(1));
    assert!(
        lines.iter().any(|l| l.contains("KILN_WORKERS")),
        "{lines:?}"
    );
}
