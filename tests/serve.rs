//! `gamegen serve` end to end: raw HTTP against the real binary. The server must stay on
//! loopback by default, send the right MIME types and security headers, and never hand out a
//! file outside its root, however the path is spelled.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
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
fn site(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("gamegen-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("www");
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><title>hi</title>").unwrap();
    std::fs::write(root.join("pkg/m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(root.join("app.js"), "export {}").unwrap();
    std::fs::write(base.join("secret.txt"), "TOP-SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
    root
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
