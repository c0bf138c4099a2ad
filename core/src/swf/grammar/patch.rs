//! Finishing a file written under the grammar: every tag's length (switching to the long form
//! when a body outgrew the short one), every clip action record's size, every sprite's frame
//! count, the header's frame count and the file length are set from the content.

use super::Grammar;
use super::profile::Event;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    #[error("byte {0} breaks the SWF grammar")]
    Rejected(usize),
    #[error("the file stops after {0} bytes, before its End tag")]
    Unfinished(usize),
}

#[derive(Debug, Default)]
struct Node {
    start: usize,
    body: usize,
    end: usize,
    children: Vec<Node>,
    /// (size field offset, end of the actions) of each clip action record.
    clips: Vec<(usize, usize)>,
}

fn code_of(bytes: &[u8], start: usize) -> u16 {
    u16::from_le_bytes([bytes[start], bytes[start + 1]]) >> 6
}

fn emit(bytes: &[u8], n: &Node, out: &mut Vec<u8>) {
    let code = code_of(bytes, n.start);
    let long = u16::from_le_bytes([bytes[n.start], bytes[n.start + 1]]) & 0x3f == 0x3f;
    let mut body = Vec::new();
    match n.children.first() {
        Some(first) => {
            body.extend_from_slice(&bytes[n.body..first.start]);
            // A sprite: its frame count is the ShowFrames among its tags.
            let frames = n
                .children
                .iter()
                .filter(|c| code_of(bytes, c.start) == 1)
                .count() as u16;
            if body.len() >= 4 {
                body[2..4].copy_from_slice(&frames.to_le_bytes());
            }
            for c in &n.children {
                emit(bytes, c, &mut body);
            }
        }
        None => {
            body.extend_from_slice(&bytes[n.body..n.end]);
            for &(size_at, end) in &n.clips {
                let size = (end - (size_at + 4)) as u32;
                let at = size_at - n.body;
                body[at..at + 4].copy_from_slice(&size.to_le_bytes());
            }
        }
    }
    if long || body.len() >= 0x3f {
        out.extend_from_slice(&((code << 6) | 0x3f).to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&((code << 6) | body.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&body);
}

/// The file with every length, size and frame count set from its content. `bytes` must be a
/// whole file the grammar accepts.
pub fn patch(bytes: &[u8]) -> Result<Vec<u8>, PatchError> {
    let mut g = Grammar::recording();
    for (i, &b) in bytes.iter().enumerate() {
        if !g.push(b) {
            return Err(PatchError::Rejected(i));
        }
    }
    if !g.is_done() {
        return Err(PatchError::Unfinished(bytes.len()));
    }
    let mut frame_count_at = 0;
    let mut open: Vec<Node> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    for e in g.take_log() {
        match e {
            Event::FrameCount(at) => frame_count_at = at,
            Event::TagStart(at) => open.push(Node {
                start: at,
                ..Node::default()
            }),
            Event::BodyStart(at) => {
                if let Some(n) = open.last_mut() {
                    n.body = at;
                }
            }
            Event::TagEnd(at) => {
                if let Some(mut n) = open.pop() {
                    n.end = at;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(n),
                        None => top.push(n),
                    }
                }
            }
            Event::ClipSize(at) => {
                if let Some(n) = open.last_mut() {
                    n.clips.push((at, at + 4));
                }
            }
            Event::ClipEnd(at) => {
                if let Some(c) = open.last_mut().and_then(|n| n.clips.last_mut()) {
                    c.1 = at;
                }
            }
        }
    }
    let first = top.first().map_or(bytes.len(), |n| n.start);
    let mut out = bytes[..first].to_vec();
    let frames = top.iter().filter(|n| code_of(bytes, n.start) == 1).count() as u16;
    out[frame_count_at..frame_count_at + 2].copy_from_slice(&frames.to_le_bytes());
    for n in &top {
        emit(bytes, n, &mut out);
    }
    let len = out.len() as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}
