//! `gamegen serve` end to end: raw HTTP against the real binary. The server must stay on
//! loopback by default, send the right MIME types and security headers, and never hand out a
//! file outside its root, however the path is spelled.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(["serve", "--port", "0", "--dir", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim();
    let addr = url
        .strip_prefix("http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no URL printed: {line:?}"))
        .parse()
        .unwrap();
    Server { child, addr }
}

/// A root with a few files, and a secret beside it that must never be served.
fn site(name: &str) -> common::TmpPath {
    let base = common::tmp(&format!("serve-{name}"));
    let root = base.join("www");
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><title>hi</title>").unwrap();
    std::fs::write(root.join("pkg/m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(root.join("app.js"), "export {}").unwrap();
    std::fs::write(base.join("secret.txt"), "TOP-SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
    base.with_path(root)
}

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head,
        body: buf[split + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn binds_loopback_by_default() {
    let root = site("bind");
    let s = start(&root, &[]);
    assert!(s.addr.ip().is_loopback(), "bound to {}", s.addr);
}

#[test]
fn serves_files_with_mime_and_security_headers() {
    let root = site("mime");
    let s = start(&root, &[]);
    let r = get(s.addr, "/");
    assert_eq!(r.status, 200);
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    let csp = header(&r, "content-security-policy").expect("CSP header");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("object-src 'none'"), "{csp}");
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    let w = get(s.addr, "/pkg/m.wasm");
    assert_eq!(w.status, 200);
    assert_eq!(header(&w, "content-type"), Some("application/wasm"));
    assert_eq!(w.body, b"\0asm\x01\0\0\0");
    let j = get(s.addr, "/app.js?v=2");
    assert!(
        header(&j, "content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(get(s.addr, "/missing.js").status, 404);
}

#[test]
fn never_serves_outside_the_root() {
    let root = site("traversal");
    let s = start(&root, &[]);
    for path in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%252e%252e/secret.txt",
        "/pkg%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/link.txt",
        "/%00",
        "//etc/passwd",
        "/etc/passwd",
    ] {
        let r = get(s.addr, path);
        assert!(
            [400, 403, 404].contains(&r.status),
            "{path}: status {}",
            r.status
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("TOP-SECRET"),
            "{path} leaked the secret"
        );
    }
}

#[test]
fn refuses_other_methods_and_oversized_heads() {
    let root = site("methods");
    let s = start(&root, &[]);
    let r = request(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(request(s.addr, big.as_bytes()).status, 431);
    let h = request(
        s.addr,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(
        get(s.addr, "/").status,
        200,
        "server survived the bad requests"
    );
}

#[test]
fn missing_directory_is_one_clear_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_gamegen"))
        .args(["serve", "--port", "0", "--dir", "/nonexistent/www"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("error: ") && e.contains("not a directory"),
        "{e}"
    );
}

/// Send `raw` (written in pieces so that a server closing early does not stop the test), then
/// read until the server closes. Returns the reply and whether the server closed the
/// connection (EOF) within `wait`.
fn request_closing(addr: SocketAddr, raw: &[u8], wait: Duration) -> (Reply, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    for chunk in raw.chunks(64 * 1024) {
        if s.write_all(chunk).is_err() {
            break; // the server answered and closed before the whole request was sent
        }
    }
    let mut buf = Vec::new();
    let mut closed = false;
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head: {:?}",
                String::from_utf8_lossy(&buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let reply = Reply {
        status,
        head,
        body: buf[split + 4..].to_vec(),
    };
    (reply, closed)
}

#[test]
fn mime_types_of_what_the_demo_serves() {
    let root = site("mime-all");
    for (name, body) in [
        ("page.html", "<!doctype html>"),
        ("style.css", "body{}"),
        ("mod.mjs", "export {}"),
        ("data.json", "{}"),
        ("game.swf", "FWS"),
        ("vae.safetensors", "\0\0\0\0\0\0\0\0"),
        ("UPPER.WASM", "\0asm"),
        ("noext", "x"),
    ] {
        std::fs::write(root.join(name), body).unwrap();
    }
    let s = start(&root, &[]);
    for (path, mime) in [
        ("/page.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/mod.mjs", "text/javascript; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/pkg/m.wasm", "application/wasm"),
        ("/UPPER.WASM", "application/wasm"),
        ("/game.swf", "application/x-shockwave-flash"),
        ("/vae.safetensors", "application/octet-stream"),
        ("/noext", "application/octet-stream"),
    ] {
        let r = get(s.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(header(&r, "content-type"), Some(mime), "{path}");
        assert_eq!(
            header(&r, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let len: usize = header(&r, "content-length").unwrap().parse().unwrap();
        assert_eq!(len, r.body.len(), "{path}");
    }
    // The policy: same-origin scripts and wasm only, nothing inline or evaluated for scripts.
    let r = get(s.addr, "/page.html");
    let csp = header(&r, "content-security-policy").unwrap();
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {csp}"))
            .to_string()
    };
    assert_eq!(
        directive("script-src"),
        "script-src 'self' 'wasm-unsafe-eval'"
    );
    assert_eq!(directive("default-src"), "default-src 'self'");
    assert_eq!(directive("object-src"), "object-src 'none'");
    assert_eq!(directive("connect-src"), "connect-src 'self'");
    assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'");
    // Error responses carry the same headers.
    let e = get(s.addr, "/missing");
    assert_eq!(e.status, 404);
    assert_eq!(header(&e, "content-security-policy"), Some(csp));
}

#[test]
fn odd_paths_are_refused_or_not_found_and_never_leave_the_root() {
    let root = site("odd");
    let s = start(&root, &[]);
    let long_segment = format!("/{}", "a".repeat(4000));
    let deep = "/a".repeat(3000);
    let mut targets: Vec<Vec<u8>> = [
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2e%2e%5csecret.txt",
        "/pkg/..%2f..%2fsecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%ff",
        "\\..\\secret.txt",
        "/pkg\\..\\..\\secret.txt",
        "http://127.0.0.1/../secret.txt",
        "C:\\secret.txt",
        "/C:/secret.txt",
        "*",
        "/index.html%00.txt",
        "/index.html/",
        "/index.html/..",
        long_segment.as_str(),
        deep.as_str(),
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    // Raw bytes no client would send: a NUL and a byte that is not UTF-8 in the target.
    targets.push(b"/index.html\0".to_vec());
    targets.push(b"/\xff\xfe".to_vec());
    for t in &targets {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(t);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (r, closed) = request_closing(s.addr, &raw, Duration::from_secs(10));
        let shown = String::from_utf8_lossy(t);
        let shown = &shown[..shown.len().min(60)];
        assert!(
            [400, 404].contains(&r.status),
            "{shown}: status {}",
            r.status
        );
        assert!(closed, "{shown}: connection left open");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("TOP-SECRET"),
            "{shown} leaked the secret"
        );
    }
    assert_eq!(get(s.addr, "/index.html").status, 200, "server survived");
}

#[test]
fn oversized_or_unexpected_requests_get_4xx_and_the_connection_closes() {
    let root = site("limits");
    let s = start(&root, &[]);
    let wait = Duration::from_secs(10);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: b\r\n".repeat(10_000)
    );
    let endless_header = format!("GET / HTTP/1.1\r\nX-Pad: {}", "a".repeat(1 << 20));
    let mut body_on_get = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n".to_vec();
    body_on_get.resize(body_on_get.len() + 4_000_000, b'z');
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("100 KB request line", long_line.into_bytes(), 414),
        ("10,000 headers", many_headers.into_bytes(), 431),
        ("a 1 MB header line without end", endless_header.into_bytes(), 431),
        ("a 4 MB body on GET", body_on_get, 400),
        (
            "chunked body",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "bad content length",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
            400,
        ),
        ("HTTP/0.9", b"GET /\r\n\r\n".to_vec(), 400),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 400),
        (
            "extra words in the request line",
            b"GET / HTTP/1.1 junk\r\n\r\n".to_vec(),
            400,
        ),
        ("header without colon", b"GET / HTTP/1.1\r\nnocolon\r\n\r\n".to_vec(), 400),
        (
            "header not UTF-8",
            b"GET / HTTP/1.1\r\nX-A: \xff\xfe\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (name, raw, want) in cases {
        let t = std::time::Instant::now();
        let (r, closed) = request_closing(s.addr, &raw, wait);
        assert_eq!(r.status, want, "{name}: {}", r.head);
        assert!(closed, "{name}: connection not closed");
        assert!(t.elapsed() < wait, "{name}: took {:?}", t.elapsed());
    }
    assert_eq!(get(s.addr, "/").status, 200, "server survived");
}

#[test]
fn a_request_head_trickling_in_is_cut_off() {
    // Slowloris: one byte every 500 ms never trips the per-read timeout, but the whole head
    // has 10 s (HEAD_DEADLINE) to arrive.
    let root = site("slow");
    let s = start(&root, &[]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    let t = std::time::Instant::now();
    let mut reply = Vec::new();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(20) {
        if c.write_all(b"a").is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match c.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if !closed {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.read_to_end(&mut reply);
    }
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&reply);
    assert!(
        took < Duration::from_secs(15),
        "a trickling head held the connection for {took:?}"
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // The server still answers.
    assert_eq!(get(s.addr, "/").status, 200);
}

/// Slow clients cannot starve others: 256 connections that sent half a request head and then
/// nothing (four times the response slots) are open, and a normal request is still answered
/// within a second; so are 64 more requests after it, one at a time.
#[test]
fn half_sent_heads_do_not_starve_a_normal_request() {
    let root = site("starve");
    let s = start(&root, &[]);
    let stalled: Vec<TcpStream> = (0..256)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Half: ")
                .unwrap();
            c
        })
        .collect();
    // Let the server accept them all (their heads are then being read).
    std::thread::sleep(Duration::from_millis(300));
    let t = std::time::Instant::now();
    let r = get(s.addr, "/index.html");
    let first = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        first < Duration::from_secs(1),
        "with 256 half-sent heads open, a request took {first:?}"
    );
    let t = std::time::Instant::now();
    for _ in 0..64 {
        assert_eq!(get(s.addr, "/app.js").status, 200);
    }
    eprintln!(
        "256 stalled heads: first answer after {first:?}, 64 more in {:?}",
        t.elapsed()
    );
    drop(stalled);
}
