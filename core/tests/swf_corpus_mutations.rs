//! The SWF validator on every file of the real corpus beside the checkout (see `corpus`,
//! skipped with a notice when absent) and on thousands of seeded mutations of those files, plus decompression
//! bombs built here: each input must get a verdict, never a panic, within a memory bound (peak
//! heap measured by a counting global allocator in this test binary) and a time bound.
//!
//! Run: `cargo test --release -p gamegen-core --test swf_corpus_mutations -- --nocapture`
//! (prints per-kind verdict counts, the worst memory ratio and the slowest input).

use gamegen_core::rng::Rng;
use gamegen_core::swf::{self, Options, Report, Verdict, header, structure};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting bytes in use and their peak since the last [`reset_peak`].
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    let now = IN_USE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the allocator may do it: the new block exists before the old one is freed.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_alloc(new_size);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tests in this binary measure the one global counter: they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Generous for any file of the corpus (the largest is 1.9 MB); catches runaway cases.
const TIME_LIMIT: Duration = Duration::from_secs(2);

/// CPU time of this thread when the OS tells it (Linux), so that a loaded machine does not make
/// the time bound flaky; otherwise wall time.
fn thread_time() -> Duration {
    if let Ok(s) = std::fs::read_to_string("/proc/thread-self/schedstat")
        && let Some(Ok(ns)) = s.split_whitespace().next().map(str::parse::<u64>)
    {
        return Duration::from_nanos(ns);
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

struct Measured {
    report: Report,
    peak: usize,
    cpu: Duration,
}

/// Validate `bytes` measuring the peak heap above what was in use before, and the time taken.
/// A panic is caught and reported with the input saved for reproduction.
fn measure(bytes: &[u8], opts: &Options, what: &str) -> Measured {
    let t0 = thread_time();
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = std::panic::catch_unwind(|| swf::validate_with(bytes, opts));
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let cpu = thread_time().saturating_sub(t0);
    match result {
        Ok(report) => Measured { report, peak, cpu },
        Err(_) => {
            let path = save_failure(bytes, what);
            panic!(
                "the validator panicked on {what}; input saved to {}",
                path.display()
            );
        }
    }
}

fn save_failure(bytes: &[u8], what: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/swf-mutation-failures");
    let _ = std::fs::create_dir_all(&dir);
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = dir.join(format!("{name}.swf"));
    let _ = std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes));
    path
}

/// What the header lets the validator reserve up front: the claimed body, capped at the limit.
fn claimed_body(bytes: &[u8], opts: &Options) -> usize {
    if bytes.len() < 8 {
        return 0;
    }
    let claim = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]).saturating_sub(8);
    (claim as usize).min(opts.max_body_len)
}

/// The memory bound for one input: the body the header may reserve (the decompression buffer
/// grows only with real data, but a corrupt zlib stream is handed to `swf::decompress_swf`,
/// which reserves the claimed length, up to the limit), plus a multiple of the data really
/// there (the decompressed body and what the swf crate parses out of it), plus a constant.
fn memory_bound(bytes: &[u8], report: &Report, opts: &Options) -> usize {
    let real = report
        .header
        .as_ref()
        .map_or(0, |h| h.actual_length as usize)
        .max(bytes.len());
    2 * claimed_body(bytes, opts) + 24 * real + (4 << 20)
}

/// The real SWF corpus beside the repository, as in the validator's unit tests.
fn corpus() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/swf-corpus");
    if !root.is_dir() {
        eprintln!(
            "corpus not found at {}; skipping the corpus part",
            root.display()
        );
        return None;
    }
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "swf") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&root, &mut v);
    v.sort();
    Some(v)
}

/// A verdict that is internally consistent.
fn check_report(r: &Report, what: &str) {
    assert_eq!(
        r.verdict == Verdict::Broken,
        r.level_reached == 0,
        "{what}: verdict {:?} at level {}",
        r.verdict,
        r.level_reached
    );
    assert_eq!(
        r.verdict == Verdict::Valid,
        r.first_error.is_none(),
        "{what}: verdict {:?}, first error {:?}",
        r.verdict,
        r.first_error
    );
}

fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The uncompressed body (after the 8-byte preamble) and the offset of the tag stream in it,
/// for a file whose header parses.
fn body_of(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let p = header::parse(bytes, 64 << 20).ok()?;
    Some((p.version, p.body.data.into_owned(), p.tags_offset))
}

/// Rebuild a file from a body: uncompressed, or zlib (`CWS`), with the honest length field.
fn rebuild(version: u8, body: &[u8], zlib: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(if zlib { b"CWS" } else { b"FWS" });
    out.push(version.max(if zlib { 6 } else { 1 }));
    out.extend_from_slice(&(body.len() as u32 + 8).to_le_bytes());
    if zlib {
        out.extend_from_slice(&zlib_compress(body));
    } else {
        out.extend_from_slice(body);
    }
    out
}

/// Offsets of every tag header in the tag stream at `start` of `body`, sprites' inner tags
/// included: (offset, header length).
fn tag_headers(body: &[u8], start: usize, out: &mut Vec<(usize, usize)>, depth: u32) {
    let mut pos = start;
    while let Some((code, head, len)) = structure::frame(&body[pos..]) {
        out.push((pos, head));
        let end = pos + head + len;
        if end > body.len() {
            break;
        }
        if code == 39 && depth < 4 && len >= 4 {
            tag_headers(&body[..end], pos + head + 4, out, depth + 1);
        }
        if code == 0 {
            break;
        }
        pos = end;
    }
}

/// A length field that lies: one of the classic off-by-ones and extremes, or random.
fn lying_u32(rng: &mut Rng, honest: u32) -> u32 {
    match rng.below(9) {
        0 => 0,
        1 => honest.wrapping_add(1),
        2 => honest.wrapping_sub(1),
        3 => honest.saturating_mul(2),
        4 => u32::MAX,
        5 => i32::MAX as u32,
        6 => (64 << 20) + 8,
        7 => rng.below(1 << 16) as u32,
        _ => rng.next_u32(),
    }
}

const KINDS: [&str; 7] = [
    "truncation",
    "bit flips",
    "lying SWF length",
    "lying tag length",
    "body bit flips (re-encoded)",
    "spliced bytes",
    "truncated re-encoded CWS",
];

/// Mutation `kind` of `orig` (a corpus file). `None` when the kind needs a header that parses.
fn mutate(orig: &[u8], kind: usize, rng: &mut Rng) -> Option<Vec<u8>> {
    let mut b = orig.to_vec();
    match kind {
        0 => {
            // Near the start (header fields), anywhere, or near the end.
            let keep = match rng.below(3) {
                0 => rng.below(b.len().min(40) as u64 + 1) as usize,
                1 => rng.below(b.len() as u64 + 1) as usize,
                _ => b.len().saturating_sub(1 + rng.below(64) as usize),
            };
            b.truncate(keep);
        }
        1 => {
            if b.is_empty() {
                return None;
            }
            for _ in 0..1 + rng.below(16) {
                let span = if rng.chance(0.5) {
                    b.len().min(32)
                } else {
                    b.len()
                };
                let at = rng.below(span as u64) as usize;
                b[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            if b.len() < 8 {
                return None;
            }
            let honest = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            b[4..8].copy_from_slice(&lying_u32(rng, honest).to_le_bytes());
        }
        3 => {
            let (version, mut body, tags_at) = body_of(orig)?;
            let mut heads = Vec::new();
            tag_headers(&body, tags_at, &mut heads, 0);
            if heads.is_empty() {
                return None;
            }
            for _ in 0..1 + rng.below(2) {
                let (at, head) = heads[rng.below(heads.len() as u64) as usize];
                let word = u16::from_le_bytes([body[at], body[at + 1]]);
                if head == 6 && rng.chance(0.8) {
                    let honest = u32::from_le_bytes(body[at + 2..at + 6].try_into().unwrap());
                    body[at + 2..at + 6].copy_from_slice(&lying_u32(rng, honest).to_le_bytes());
                } else {
                    // Short form: any 6-bit length, 0x3f turning the next 4 bytes into one.
                    let w = (word & !0x3f) | rng.below(64) as u16;
                    body[at..at + 2].copy_from_slice(&w.to_le_bytes());
                }
            }
            b = rebuild(version, &body, rng.chance(0.5));
        }
        4 => {
            let (version, mut body, _) = body_of(orig)?;
            if body.is_empty() {
                return None;
            }
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(body.len() as u64) as usize;
                if rng.chance(0.5) {
                    body[at] ^= 1 << rng.below(8);
                } else {
                    body[at] = rng.next_u32() as u8;
                }
            }
            b = rebuild(version, &body, rng.chance(0.5));
        }
        5 => {
            // Duplicate, delete or insert a random run of bytes.
            let at = rng.below(b.len() as u64 + 1) as usize;
            let n = 1 + rng.below(256) as usize;
            match rng.below(3) {
                0 => {
                    let end = (at + n).min(b.len());
                    let run = b[at..end].to_vec();
                    b.splice(at..at, run);
                }
                1 => {
                    let end = (at + n).min(b.len());
                    b.drain(at..end);
                }
                _ => {
                    let run: Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
                    b.splice(at..at, run);
                }
            }
        }
        _ => {
            let (version, body, _) = body_of(orig)?;
            let mut z = rebuild(version, &body, true);
            let keep = 8 + rng.below(z.len() as u64 - 7) as usize;
            z.truncate(keep);
            b = z;
        }
    }
    Some(b)
}

#[derive(Default)]
struct Tally {
    inputs: usize,
    verdicts: [usize; 3],
    worst_ratio: f64,
    worst_ratio_what: String,
    max_peak: usize,
    max_peak_what: String,
    slowest: Duration,
    slowest_what: String,
}

impl Tally {
    fn add(&mut self, m: &Measured, bound: usize, what: &str) {
        self.inputs += 1;
        self.verdicts[match m.report.verdict {
            Verdict::Valid => 0,
            Verdict::Damaged => 1,
            Verdict::Broken => 2,
        }] += 1;
        let ratio = m.peak as f64 / bound as f64;
        if ratio > self.worst_ratio {
            self.worst_ratio = ratio;
            self.worst_ratio_what = what.to_string();
        }
        if m.peak > self.max_peak {
            self.max_peak = m.peak;
            self.max_peak_what = what.to_string();
        }
        if m.cpu > self.slowest {
            self.slowest = m.cpu;
            self.slowest_what = what.to_string();
        }
    }

    fn print(&self, label: &str) {
        eprintln!(
            "{label}: {} inputs, verdicts valid/damaged/broken {}/{}/{}; peak heap max {:.2} MB ({}); \
             worst peak/bound {:.3} ({}); slowest {:.1} ms ({})",
            self.inputs,
            self.verdicts[0],
            self.verdicts[1],
            self.verdicts[2],
            self.max_peak as f64 / 1e6,
            self.max_peak_what,
            self.worst_ratio,
            self.worst_ratio_what,
            self.slowest.as_secs_f64() * 1e3,
            self.slowest_what,
        );
    }
}

fn check_bounds(m: &Measured, bytes: &[u8], opts: &Options, what: &str) -> usize {
    check_report(&m.report, what);
    let bound = memory_bound(bytes, &m.report, opts);
    if m.peak > bound {
        let path = save_failure(bytes, what);
        panic!(
            "{what}: peak heap {} bytes over the bound {bound} ({} input bytes, claimed body {}); \
             saved to {}",
            m.peak,
            bytes.len(),
            claimed_body(bytes, opts),
            path.display()
        );
    }
    if m.cpu > TIME_LIMIT {
        let path = save_failure(bytes, what);
        panic!(
            "{what}: took {:?}, over {TIME_LIMIT:?}; saved to {}",
            m.cpu,
            path.display()
        );
    }
    bound
}

/// Mutations per run; `SWF_MUTATIONS` overrides (a longer soak).
fn mutation_count() -> usize {
    std::env::var("SWF_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn corpus_files_and_seeded_mutations_get_a_verdict_in_bounded_memory_and_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(files) = corpus() else { return };
    assert!(files.len() > 2000, "{} files", files.len());
    let started = Instant::now();
    let opts = Options::default();
    let data: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/swf-corpus");
    let name = |i: usize| {
        files[i]
            .strip_prefix(&root)
            .unwrap_or(&files[i])
            .display()
            .to_string()
    };

    let mut tally = Tally::default();
    for (i, bytes) in data.iter().enumerate() {
        let what = name(i);
        let m = measure(bytes, &opts, &what);
        let bound = check_bounds(&m, bytes, &opts, &what);
        tally.add(&m, bound, &what);
    }
    tally.print("corpus");

    let n = mutation_count();
    let mut by_kind: Vec<Tally> = KINDS.iter().map(|_| Tally::default()).collect();
    let mut skipped = 0;
    let mut disagree = Vec::new();
    let mut lzma_tails = 0;
    for i in 0..n {
        let mut rng = Rng::for_stream(0x005e_ed5f, i as u64);
        let file = rng.below(data.len() as u64) as usize;
        let kind = i % KINDS.len();
        let Some(bytes) = mutate(&data[file], kind, &mut rng) else {
            skipped += 1;
            continue;
        };
        let what = format!("mutation {i} ({}) of {}", KINDS[kind], name(file));
        let m = measure(&bytes, &opts, &what);
        let bound = check_bounds(&m, &bytes, &opts, &what);
        by_kind[kind].add(&m, bound, &what);
        // Level 1 is the swf crate's (Ruffle's) own header check: same answer, wherever the
        // crate is safe to ask (it reserves the claimed length) and the body fits the limit.
        if claimed_body(&bytes, &opts) < opts.max_body_len {
            let ours = m.report.verdict != Verdict::Broken;
            let theirs = ::swf::decompress_swf(&bytes[..]).is_ok();
            // Known and documented (docs/reliability.md): a `ZWS` body longer than its length
            // field is decoded up to the claim only, while the crate decodes the whole stream
            // (unbounded) and fails on a corruption past the claim.
            let lzma_tail = bytes.starts_with(b"ZWS")
                && m.report
                    .findings
                    .iter()
                    .any(|f| f.message.starts_with("data continues past"));
            if ours != theirs && lzma_tail && ours {
                lzma_tails += 1;
            } else if ours != theirs {
                let path = save_failure(&bytes, &what);
                disagree.push(format!(
                    "{what}: validator level 1 {ours}, swf crate {theirs} (saved to {})",
                    path.display()
                ));
            }
        }
    }
    for (k, t) in by_kind.iter().enumerate() {
        t.print(KINDS[k]);
    }
    let done: usize = by_kind.iter().map(|t| t.inputs).sum();
    eprintln!(
        "{} corpus files and {done} mutations ({skipped} skipped: their kind needs a header that \
         parses, or bytes) in {:.1} s; {lzma_tails} ZWS with a stream the swf crate refuses past \
         the length field accepted at level 1",
        data.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(done >= n * 3 / 4, "only {done} of {n} mutations ran");
    assert!(
        disagree.is_empty(),
        "{} disagreements at level 1:\n{}",
        disagree.len(),
        disagree.join("\n")
    );
}

/// Adler-32 state after `n` more zero bytes.
fn adler_zeros(a: u32, b: u32, n: u64) -> (u32, u32) {
    const M: u64 = 65521;
    (a, ((u64::from(b) + (n % M) * u64::from(a)) % M) as u32)
}

fn adler(data: &[u8]) -> (u32, u32) {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (a, b)
}

/// The header fields and a tag stream of a small valid movie: a stage rectangle, frame rate and
/// count, SetBackgroundColor, ShowFrame, End.
fn movie_prefix() -> Vec<u8> {
    use ::swf::{Color, Compression, Header, Rectangle, Tag, Twips};
    let header = Header {
        compression: Compression::None,
        version: 10,
        stage_size: Rectangle {
            x_min: Twips::ZERO,
            x_max: Twips::from_pixels(550.0),
            y_min: Twips::ZERO,
            y_max: Twips::from_pixels(400.0),
        },
        frame_rate: ::swf::Fixed8::from_f32(24.0),
        num_frames: 1,
    };
    let tags = [
        Tag::SetBackgroundColor(Color::from_rgb(0x336699, 255)),
        Tag::ShowFrame,
    ];
    let mut out = Vec::new();
    ::swf::write_swf(&header, &tags, &mut out).unwrap();
    // Without the preamble and without the End tag.
    out[8..out.len() - 2].to_vec()
}

/// A `CWS` file whose zlib stream inflates to `prefix` followed by `zeros` zero bytes, built
/// without ever holding the zeros: deflate blocks after a full flush do not refer back, so the
/// blocks for one chunk of zeros can be repeated. `claim` goes in the length field.
/// Compress all of `input` with `flush`, returning the bytes produced.
fn feed(c: &mut flate2::Compress, input: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = 0;
    let mut produced = Vec::new();
    loop {
        let (i0, o0) = (c.total_in(), c.total_out());
        c.compress(&input[pos..], &mut buf, flush).unwrap();
        pos += (c.total_in() - i0) as usize;
        let n = (c.total_out() - o0) as usize;
        produced.extend_from_slice(&buf[..n]);
        if pos == input.len() && n < buf.len() {
            return produced;
        }
    }
}

fn zlib_bomb(prefix: &[u8], zeros: u64, claim: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const CHUNK: usize = 1 << 20;
    assert_eq!(zeros % CHUNK as u64, 0);
    let mut c = Compress::new(Compression::best(), true);
    let mut out = Vec::with_capacity(1 << 16);
    out.extend(feed(&mut c, prefix, FlushCompress::Full));
    let zero = vec![0u8; CHUNK];
    let first = feed(&mut c, &zero, FlushCompress::Full);
    let again = feed(&mut c, &zero, FlushCompress::Full);
    assert_eq!(first, again, "a fully flushed chunk must compress the same");
    for _ in 0..zeros / CHUNK as u64 {
        out.extend_from_slice(&first);
    }
    out.extend_from_slice(&[0x03, 0x00]); // final empty fixed-Huffman block
    let (a, b) = adler(prefix);
    let (a, b) = adler_zeros(a, b, zeros);
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut file = b"CWS\x0a".to_vec();
    file.extend_from_slice(&claim.to_le_bytes());
    file.extend_from_slice(&out);
    file
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = movie_prefix();
    // 4 GiB of zeros behind the header fields: about 4 MB of zlib.
    let zeros = (4u64 << 30) - (1 << 20);
    let bomb = zlib_bomb(&prefix, zeros, u32::MAX);
    // The stream is sound: a reference inflate of the first bytes gives the prefix.
    let mut head = vec![0u8; prefix.len() + 16];
    let mut d = flate2::Decompress::new(true);
    d.decompress(&bomb[8..], &mut head, flate2::FlushDecompress::None)
        .unwrap();
    assert_eq!(&head[..prefix.len()], &prefix[..]);
    assert!(head[prefix.len()..].iter().all(|&x| x == 0));

    for (max_body, claim) in [
        (64usize << 20, u32::MAX),
        (1 << 20, u32::MAX),
        (1 << 20, 1000),
    ] {
        let mut file = bomb.clone();
        file[4..8].copy_from_slice(&claim.to_le_bytes());
        let opts = Options {
            max_body_len: max_body,
            ..Options::default()
        };
        let what = format!(
            "zlib bomb ({} MB of zlib inflating to 4 GiB), length field {claim}, limit {max_body}",
            file.len() / 1_000_000
        );
        let m = measure(&file, &opts, &what);
        check_report(&m.report, &what);
        assert_eq!(m.report.verdict, Verdict::Damaged, "{what}: {:?}", m.report);
        // Output capped at the limit (or the claim): the buffer grows by doubling to it.
        let cap = claimed_body(&file, &opts);
        let bound = cap + cap / 2 + (2 << 20);
        eprintln!(
            "{what}: verdict {:?} ({}), peak heap {:.2} MB (bound {:.2} MB), {:.1} ms",
            m.report.verdict,
            m.report.first_error.as_ref().unwrap().message,
            m.peak as f64 / 1e6,
            bound as f64 / 1e6,
            m.cpu.as_secs_f64() * 1e3
        );
        assert!(m.peak <= bound, "{what}: peak {} > {bound}", m.peak);
        assert!(m.cpu <= TIME_LIMIT, "{what}: {:?}", m.cpu);
    }
}

/// A `ZWS` file whose LZMA stream decodes to `prefix` followed by `zeros` zero bytes.
/// lzma-rs's encoder writes literals only (about 27:1 on zeros), so this bomb is smaller than
/// the zlib one; it is checked against a limit well below its size.
fn lzma_bomb(prefix: &[u8], zeros: usize, claim: u32) -> Vec<u8> {
    let mut body = prefix.to_vec();
    body.resize(prefix.len() + zeros, 0);
    let mut packed = Vec::new();
    lzma_rs::lzma_compress(&mut &body[..], &mut packed).unwrap();
    drop(body);
    // Flash's layout: compressed length, the 5 property bytes, the data (no 8-byte size).
    let mut file = b"ZWS\x0d".to_vec();
    file.extend_from_slice(&claim.to_le_bytes());
    file.extend_from_slice(&(packed.len() as u32 - 13).to_le_bytes());
    file.extend_from_slice(&packed[..5]);
    file.extend_from_slice(&packed[13..]);
    file
}

#[test]
fn an_lzma_bomb_stops_at_the_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = movie_prefix();
    let t = Instant::now();
    let bomb = lzma_bomb(&prefix, 16 << 20, u32::MAX);
    eprintln!(
        "LZMA bomb: {} KB inflating to 16 MiB, built in {:.1} s",
        bomb.len() / 1000,
        t.elapsed().as_secs_f64()
    );
    // Sound: with room for all of it, the validator decodes the whole body.
    let full = Options::default();
    let m = measure(&bomb, &full, "LZMA bomb, default limit");
    check_report(&m.report, "LZMA bomb");
    assert_eq!(
        m.report.header.as_ref().unwrap().actual_length,
        8 + prefix.len() as u64 + (16 << 20)
    );
    for (max_body, claim) in [(1usize << 20, u32::MAX), (1 << 20, 1000)] {
        let mut file = bomb.clone();
        file[4..8].copy_from_slice(&claim.to_le_bytes());
        let opts = Options {
            max_body_len: max_body,
            ..Options::default()
        };
        let what = format!("LZMA bomb, length field {claim}, limit {max_body}");
        let m = measure(&file, &opts, &what);
        check_report(&m.report, &what);
        assert_eq!(m.report.verdict, Verdict::Damaged, "{what}: {:?}", m.report);
        // The output and the LZMA dictionary (bounded by the same limit) plus the decoder's
        // tables.
        let cap = claimed_body(&file, &opts);
        let bound = 2 * cap + (2 << 20);
        eprintln!(
            "{what}: verdict {:?} ({}), peak heap {:.2} MB (bound {:.2} MB), {:.1} ms",
            m.report.verdict,
            m.report.first_error.as_ref().unwrap().message,
            m.peak as f64 / 1e6,
            bound as f64 / 1e6,
            m.cpu.as_secs_f64() * 1e3
        );
        assert!(m.peak <= bound, "{what}: peak {} > {bound}", m.peak);
        assert!(m.cpu <= TIME_LIMIT, "{what}: {:?}", m.cpu);
    }
}
