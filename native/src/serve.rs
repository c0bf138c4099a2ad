//! The demo's static file server.
//!
//! Small on purpose: GET/HEAD of files under one root, nothing else. It binds to loopback unless
//! told otherwise, refuses every path that could leave the root (`..`, encoded separators,
//! symlinks pointing out), bounds request size, time and connection count, and sends a
//! Content-Security-Policy that lets pages run only same-origin scripts and wasm.
//!
//! One thread per open connection. A connection waiting for its request head holds only its
//! thread (at most [`MAX_OPEN_CONNECTIONS`], each head cut off after [`HEAD_DEADLINE`]); a slot
//! of [`MAX_CONNECTIONS`] is taken only while a response is produced and sent, so clients that
//! send their heads slowly, or never finish them, cannot keep others from being answered.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Same-origin scripts and wasm only; `blob:` workers for the Ruffle player; no plugins, no
/// framing, no foreign connections.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     style-src 'self' 'unsafe-inline'; font-src 'self'; worker-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Longest request line plus headers we accept.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Longest request line (method, target, version) we accept; longer gets 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Responses produced and sent at once; more requests wait for a slot.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections open at once, whatever they are doing (each is a thread); more wait in the
/// kernel's accept queue.
pub const MAX_OPEN_CONNECTIONS: usize = 1024;
/// Stack of a connection's thread: it holds a request head and copy buffers, nothing deep.
const THREAD_STACK: usize = 256 * 1024;
/// Each read and write must make progress within this.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request head (and the idle time before it on a kept-alive connection) must arrive
/// within this, however slowly its bytes trickle in: a client cannot hold a connection (one of
/// [`MAX_CONNECTIONS`]) by sending a byte every few seconds.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// After an error response the connection is closed; unread request bytes (up to this many,
/// for at most [`LINGER`]) are read and dropped first, so that the close does not turn into a
/// TCP reset that destroys the response before the client reads it.
const LINGER_BYTES: u64 = 256 * 1024;
const LINGER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve {0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A bound server, not yet accepting.
pub struct Server {
    listener: TcpListener,
    root: Arc<PathBuf>,
}

impl Server {
    pub fn bind(root: &Path, host: IpAddr, port: u16) -> Result<Self, ServeError> {
        let root = root
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| ServeError::NotADirectory(root.to_path_buf()))?;
        let addr = SocketAddr::new(host, port);
        let listener =
            TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self {
            listener,
            root: Arc::new(root),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections forever, one thread each, at most [`MAX_OPEN_CONNECTIONS`] open and
    /// [`MAX_CONNECTIONS`] responding at a time.
    pub fn run(self) -> Result<(), ServeError> {
        let open = Arc::new(AtomicUsize::new(0));
        let slots = Arc::new(Slots::new(MAX_CONNECTIONS));
        for stream in self.listener.incoming() {
            let Ok(stream) = stream else { continue };
            while open.load(Ordering::Acquire) >= MAX_OPEN_CONNECTIONS {
                std::thread::sleep(Duration::from_millis(5));
            }
            open.fetch_add(1, Ordering::AcqRel);
            let root = Arc::clone(&self.root);
            let (open_in, slots) = (Arc::clone(&open), Arc::clone(&slots));
            let spawned = std::thread::Builder::new()
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    let _ = handle(stream, &root, &slots);
                    open_in.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                // Out of threads: the stream was dropped with the closure (closed); go on.
                open.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }
}

/// A counting semaphore: the response slots.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One taken slot, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn take(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

enum Body {
    Bytes(Vec<u8>),
    File(std::fs::File, u64),
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Body,
}

impl Response {
    fn error(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: Body::Bytes(format!("{status} {reason}\n").into_bytes()),
        }
    }

    fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, n) => *n,
        }
    }
}

/// The connection's reads: every read waits at most until the current head's deadline.
struct DeadlineReader {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "request head too slow",
            ));
        }
        self.stream.set_read_timeout(Some(left.min(IO_TIMEOUT)))?;
        self.stream.read(buf)
    }
}

/// Serve requests on one connection (keep-alive), until the client closes or misbehaves.
fn handle(stream: TcpStream, root: &Path, slots: &Slots) -> std::io::Result<()> {
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(DeadlineReader {
        stream: stream.try_clone()?,
        deadline: Instant::now() + HEAD_DEADLINE,
    });
    let mut writer = stream;
    loop {
        reader.get_mut().deadline = Instant::now() + HEAD_DEADLINE;
        let refuse = |writer: &mut TcpStream, status, reason| {
            write_response(writer, Response::error(status, reason), true, false)?;
            linger_close(writer);
            Ok(())
        };
        let head = match read_head(&mut reader) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()),
            Err(HeadError::LineTooLong) => return refuse(&mut writer, 414, "URI Too Long"),
            Err(HeadError::TooLarge) => {
                return refuse(&mut writer, 431, "Request Header Fields Too Large");
            }
            Err(HeadError::Malformed) => return refuse(&mut writer, 400, "Bad Request"),
            Err(HeadError::Timeout) => return refuse(&mut writer, 408, "Request Timeout"),
            Err(HeadError::Io(e)) => return Err(e),
        };
        let mut parts = head.request_line.split(' ');
        let (method, target, version) = (parts.next(), parts.next(), parts.next());
        let (Some(method), Some(target), Some(version), None) =
            (method, target, version, parts.next())
        else {
            return refuse(&mut writer, 400, "Bad Request");
        };
        if !version.starts_with("HTTP/1.") || head.content_length > 0 {
            // No request bodies: nothing here takes uploads.
            return refuse(&mut writer, 400, "Bad Request");
        }
        let close = head.close || version == "HTTP/1.0";
        let is_head = method == "HEAD";
        let _slot = slots.take();
        let response = if method != "GET" && !is_head {
            Response::error(405, "Method Not Allowed")
        } else {
            respond(root, target)
        };
        write_response(&mut writer, response, close, is_head)?;
        if close {
            return Ok(());
        }
    }
}

/// Half-close, then read and drop what the client still sends (bounded in bytes and time), so
/// that closing with unread data does not reset the connection under the response.
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER));
    let end = Instant::now() + LINGER;
    let mut buf = [0u8; 8192];
    let mut left = LINGER_BYTES;
    while left > 0 && Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

struct Head {
    request_line: String,
    content_length: u64,
    close: bool,
}

enum HeadError {
    Timeout,
    LineTooLong,
    TooLarge,
    Malformed,
    Io(std::io::Error),
}

fn read_head(reader: &mut impl BufRead) -> Result<Option<Head>, HeadError> {
    let mut total = 0usize;
    let mut lines = Vec::new();
    loop {
        let first = lines.is_empty();
        // The request line has its own, smaller limit; the whole head shares the other one.
        let limit = if first {
            MAX_REQUEST_LINE.min(MAX_HEAD_BYTES - total)
        } else {
            MAX_HEAD_BYTES - total
        };
        let mut line = Vec::new();
        let n = match reader.take(limit as u64 + 1).read_until(b'\n', &mut line) {
            Ok(n) => n,
            // A timed-out read is `WouldBlock` on Unix, `TimedOut` on Windows.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Idle between requests: just close. Part of a head: the client is too slow.
                return if first && total == 0 && line.is_empty() {
                    Ok(None)
                } else {
                    Err(HeadError::Timeout)
                };
            }
            Err(e) => return Err(HeadError::Io(e)),
        };
        if n == 0 {
            return if first {
                Ok(None)
            } else {
                Err(HeadError::Malformed)
            };
        }
        if n > limit {
            return Err(if first && total + n <= MAX_HEAD_BYTES {
                HeadError::LineTooLong
            } else {
                HeadError::TooLarge
            });
        }
        total += n;
        let text = String::from_utf8(line).map_err(|_| HeadError::Malformed)?;
        let text = text.trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // tolerate a stray empty line between requests
            }
            break;
        }
        lines.push(text);
    }
    let request_line = lines.remove(0);
    let mut content_length = 0;
    let mut close = false;
    for l in &lines {
        let Some((k, v)) = l.split_once(':') else {
            return Err(HeadError::Malformed);
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            content_length = v.parse().map_err(|_| HeadError::Malformed)?;
        } else if k == "transfer-encoding" {
            return Err(HeadError::Malformed);
        } else if k == "connection" && v.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    Ok(Some(Head {
        request_line,
        content_length,
        close,
    }))
}

fn write_response(
    w: &mut impl Write,
    r: Response,
    close: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Resource-Policy: same-origin\r\n\
         Cache-Control: no-cache\r\n",
        r.status,
        r.reason,
        r.content_type,
        r.len()
    );
    if r.status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    w.write_all(head.as_bytes())?;
    if !head_only {
        match r.body {
            Body::Bytes(b) => w.write_all(&b)?,
            // Streamed: a large file is never held in memory, per connection.
            Body::File(f, len) => {
                let sent = std::io::copy(&mut f.take(len), w)?;
                if sent != len {
                    // The file shrank under us: the promised length cannot be kept.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file changed while being sent",
                    ));
                }
            }
        }
    }
    w.flush()
}

/// Map a request target to a response: only files strictly inside `root`.
fn respond(root: &Path, target: &str) -> Response {
    let Some(rel) = safe_relative_path(target) else {
        return Response::error(400, "Bad Request");
    };
    let mut path = root.join(&rel);
    if path.is_dir() {
        path = path.join("index.html");
    } else if target
        .split(['?', '#'])
        .next()
        .is_some_and(|p| p.ends_with('/'))
    {
        // `/file.html/`: a file is not a directory (relative links would resolve wrongly).
        return Response::error(404, "Not Found");
    }
    // Symlinks may point anywhere: resolve and re-check containment.
    let Ok(real) = path.canonicalize() else {
        return Response::error(404, "Not Found");
    };
    if !real.starts_with(root) || !real.is_file() {
        return Response::error(404, "Not Found");
    }
    let opened = std::fs::File::open(&real).and_then(|f| {
        let len = f.metadata()?.len();
        Ok((f, len))
    });
    match opened {
        Ok((file, len)) => Response {
            status: 200,
            reason: "OK",
            content_type: mime_type(&real),
            body: Body::File(file, len),
        },
        Err(_) => Response::error(404, "Not Found"),
    }
}

/// Decode the path of a request target into a relative path made only of normal components.
/// Returns `None` for anything suspicious: `..`, `.`, encoded `/` or `\`, NUL, bad escapes,
/// absolute-form targets.
pub fn safe_relative_path(target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    if !path.starts_with('/') {
        return None;
    }
    let mut rel = PathBuf::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(raw)?;
        if seg.contains(['/', '\\', '\0']) || seg == "." || seg == ".." {
            return None;
        }
        let p = Path::new(&seg);
        let mut comps = p.components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => rel.push(p),
            _ => return None,
        }
    }
    Some(rel)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Content types by extension; unknown files are served as opaque bytes.
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("swf") => "application/x-shockwave-flash",
        // Model weights: opaque bytes, said explicitly.
        Some("safetensors") => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_decode() {
        assert_eq!(safe_relative_path("/"), Some(PathBuf::new()));
        assert_eq!(
            safe_relative_path("/js/a%20b.js?x=1"),
            Some(PathBuf::from("js/a b.js"))
        );
    }

    #[test]
    fn traversal_is_refused() {
        for t in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/a%2f..%2fb",
            "/a%5c..%5cb",
            "/..\\x",
            "/%00",
            "/%zz",
            "/%2",
            "http://evil/x",
            "x",
            "/./a",
        ] {
            assert_eq!(safe_relative_path(t), None, "{t}");
        }
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type(Path::new("a.wasm")), "application/wasm");
        assert_eq!(
            mime_type(Path::new("a.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            mime_type(Path::new("a.safetensors")),
            "application/octet-stream"
        );
    }
}
