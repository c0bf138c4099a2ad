//! Designer presets: a Traveler strip or a Pac-Man maze from a small text file.
//!
//! MaaG shows that an explicit map lets a designer fix what the player will see; these presets
//! are that map for the real games. The format is documented in `docs/maps.md`:
//!
//! ```text
//! gamegen-map 1
//! game traveler
//! # '#' starts a comment in the header
//! palette X 20a0e0 40     # optional: key, RRGGBB colour, height in pixels
//! start 2                 # slot the traveller starts in (default 0)
//! outside random          # slots beyond the strip: random (from the seed) or empty
//! strip
//! RR.G..Bb.X
//! ```
//!
//! ```text
//! gamegen-map 1
//! game pacman
//! maze
//! #######
//! #P...M#
//! #######
//! ```
//! After `strip` / `maze` every line belongs to the map (so `#` is a wall there, not a comment).

use super::{Building, GameError, GameKind};

/// Largest maze side accepted, to keep hostile files from allocating without bound.
pub const MAX_MAZE_SIDE: usize = 256;
/// Longest strip accepted.
pub const MAX_STRIP_LEN: usize = 100_000;

/// What Traveler shows beyond the preset strip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outside {
    /// Buildings and empty spaces drawn from the episode seed (the default).
    Random,
    /// Only empty spaces: every slot crossed there gets built.
    Empty,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripPreset {
    /// Slot 0 is the first character of the strip; `None` is an empty space.
    pub slots: Vec<Option<Building>>,
    /// Slot the traveller starts in.
    pub start: usize,
    pub outside: Outside,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MazePreset {
    pub width: usize,
    pub height: usize,
    pub walls: Vec<bool>,
    pub dots: Vec<bool>,
    /// Pac-Man's start cell (x, y); random floor cell when absent.
    pub pacman: Option<(usize, usize)>,
    /// The monster's start cell; random floor cell far from Pac-Man when absent.
    pub monster: Option<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapPreset {
    Strip(StripPreset),
    Maze(MazePreset),
}

impl MapPreset {
    pub fn game(&self) -> GameKind {
        match self {
            MapPreset::Strip(_) => GameKind::Traveler,
            MapPreset::Maze(_) => GameKind::Pacman,
        }
    }
    pub fn as_strip(&self) -> Option<&StripPreset> {
        match self {
            MapPreset::Strip(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_maze(&self) -> Option<&MazePreset> {
        match self {
            MapPreset::Maze(m) => Some(m),
            _ => None,
        }
    }
}

/// The keys of the built-in palette, in the order a map editor offers them.
pub const BUILTIN_KEYS: &str = "ROYGCBPMNW";

/// The built-in palette, tall (upper case) then short (lower case) buildings, with the key each
/// has in a strip.
pub fn builtin_palette() -> Vec<(char, Building)> {
    BUILTIN_KEYS
        .chars()
        .chain(BUILTIN_KEYS.chars().map(|c| c.to_ascii_lowercase()))
        .filter_map(|c| default_building(c).map(|b| (c, b)))
        .collect()
}

/// The built-in palette: upper case = tall building, lower case = the same colour, short.
fn default_building(c: char) -> Option<Building> {
    let color = match c.to_ascii_uppercase() {
        'R' => [214, 48, 49],
        'O' => [230, 126, 34],
        'Y' => [241, 196, 15],
        'G' => [39, 174, 96],
        'C' => [26, 188, 196],
        'B' => [41, 98, 220],
        'P' => [142, 68, 173],
        'M' => [232, 67, 147],
        'N' => [121, 85, 61],
        'W' => [236, 240, 241],
        _ => return None,
    };
    let height = if c.is_ascii_uppercase() { 44 } else { 28 };
    Some(Building {
        color,
        height,
        built: false,
    })
}

fn bad(line: usize, why: impl Into<String>) -> GameError {
    GameError::BadMap {
        line,
        why: why.into(),
    }
}

/// Parse a preset file's text. Errors name the line (1-based) and what is wrong.
pub fn parse_map(text: &str) -> Result<MapPreset, GameError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let strip_comment = |l: &str| l.split('#').next().unwrap_or("").trim().to_string();
    // Header line.
    let mut header_seen = false;
    let mut game: Option<GameKind> = None;
    let mut palette: Vec<(char, Building)> = Vec::new();
    let mut start = 0usize;
    let mut outside = Outside::Random;
    let mut section: Option<(usize, &str)> = None;
    for (n, raw) in lines.by_ref() {
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let key = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        if !header_seen {
            if key != "gamegen-map" {
                return Err(bad(n, "the first line must be 'gamegen-map 1'"));
            }
            if args != ["1"] {
                return Err(bad(
                    n,
                    format!("unsupported map version {:?}", args.join(" ")),
                ));
            }
            header_seen = true;
            continue;
        }
        match key {
            "game" => {
                let g: GameKind = args
                    .first()
                    .ok_or_else(|| bad(n, "'game' needs a name"))?
                    .parse()
                    .map_err(|e: GameError| bad(n, e.to_string()))?;
                if g == GameKind::Pong {
                    return Err(bad(n, "pong has no map to preset"));
                }
                game = Some(g);
            }
            "palette" => {
                if args.len() != 3 || args[0].chars().count() != 1 {
                    return Err(bad(n, "expected 'palette KEY RRGGBB HEIGHT'"));
                }
                let k = args[0].chars().next().unwrap_or('?');
                if matches!(k, '.' | '#') {
                    return Err(bad(n, "palette key cannot be '.' or '#'"));
                }
                let color =
                    parse_hex_color(args[1]).ok_or_else(|| bad(n, "colour must be RRGGBB hex"))?;
                let height: u8 = args[2]
                    .parse()
                    .ok()
                    .filter(|h| (4..=56).contains(h))
                    .ok_or_else(|| bad(n, "height must be 4..=56 pixels"))?;
                palette.push((
                    k,
                    Building {
                        color,
                        height,
                        built: false,
                    },
                ));
            }
            "start" => {
                start = args
                    .first()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(n, "'start' needs a slot number"))?;
            }
            "outside" => {
                outside = match args.first().copied() {
                    Some("random") => Outside::Random,
                    Some("empty") => Outside::Empty,
                    _ => return Err(bad(n, "'outside' must be random or empty")),
                };
            }
            "strip" | "maze" => {
                section = Some((n, if key == "strip" { "strip" } else { "maze" }));
                break;
            }
            other => return Err(bad(n, format!("unknown key '{other}'"))),
        }
    }
    if !header_seen {
        return Err(bad(1, "empty map file (expected 'gamegen-map 1')"));
    }
    let game = game.ok_or_else(|| bad(1, "missing 'game traveler' or 'game pacman'"))?;
    let (sec_line, sec) = section.ok_or_else(|| bad(1, "missing 'strip' or 'maze' section"))?;
    let body: Vec<(usize, &str)> = lines
        .map(|(n, l)| (n, l.trim_end_matches(['\r', ' ', '\t'])))
        .collect();
    match (game, sec) {
        (GameKind::Traveler, "strip") => {
            let mut slots = Vec::new();
            for (n, l) in &body {
                let l = l.trim();
                for c in l.chars() {
                    if c.is_whitespace() {
                        continue;
                    }
                    let slot = if c == '.' {
                        None
                    } else if let Some((_, b)) = palette.iter().find(|(k, _)| *k == c) {
                        Some(*b)
                    } else if let Some(b) = default_building(c) {
                        Some(b)
                    } else {
                        return Err(bad(*n, format!("unknown building key '{c}'")));
                    };
                    slots.push(slot);
                    if slots.len() > MAX_STRIP_LEN {
                        return Err(bad(*n, format!("strip longer than {MAX_STRIP_LEN} slots")));
                    }
                }
            }
            if slots.is_empty() {
                return Err(bad(sec_line, "the strip is empty"));
            }
            if start >= slots.len() {
                return Err(bad(
                    sec_line,
                    format!("start {start} is past the strip ({} slots)", slots.len()),
                ));
            }
            Ok(MapPreset::Strip(StripPreset {
                slots,
                start,
                outside,
            }))
        }
        (GameKind::Pacman, "maze") => parse_maze(sec_line, &body),
        (g, s) => Err(bad(
            sec_line,
            format!(
                "a {g} map needs a '{}' section, not '{s}'",
                if g == GameKind::Traveler {
                    "strip"
                } else {
                    "maze"
                }
            ),
        )),
    }
}

fn parse_maze(sec_line: usize, body: &[(usize, &str)]) -> Result<MapPreset, GameError> {
    let mut rows: Vec<(usize, &str)> = body.to_vec();
    while rows.last().is_some_and(|(_, l)| l.is_empty()) {
        rows.pop();
    }
    if rows.is_empty() {
        return Err(bad(sec_line, "the maze is empty"));
    }
    let width = rows
        .iter()
        .map(|(_, l)| l.chars().count())
        .max()
        .unwrap_or(0);
    let height = rows.len();
    if width > MAX_MAZE_SIDE || height > MAX_MAZE_SIDE {
        return Err(bad(
            sec_line,
            format!("maze larger than {MAX_MAZE_SIDE}x{MAX_MAZE_SIDE}"),
        ));
    }
    let mut walls = vec![true; width * height];
    let mut dots = vec![false; width * height];
    let (mut pacman, mut monster) = (None, None);
    for (y, (n, l)) in rows.iter().enumerate() {
        if l.chars().count() != width {
            return Err(bad(
                *n,
                format!("row is {} wide, the maze is {width}", l.chars().count()),
            ));
        }
        for (x, c) in l.chars().enumerate() {
            let i = y * width + x;
            match c {
                '#' => {}
                '.' => {
                    walls[i] = false;
                    dots[i] = true;
                }
                ' ' => walls[i] = false,
                'P' | 'M' => {
                    walls[i] = false;
                    let slot = if c == 'P' { &mut pacman } else { &mut monster };
                    if slot.is_some() {
                        return Err(bad(*n, format!("more than one '{c}'")));
                    }
                    *slot = Some((x, y));
                }
                other => {
                    return Err(bad(
                        *n,
                        format!("unknown maze character '{other}' (use # . space P M)"),
                    ));
                }
            }
        }
    }
    let floor = walls.iter().filter(|w| !**w).count();
    if floor < 2 {
        return Err(bad(sec_line, "the maze needs at least two open cells"));
    }
    Ok(MapPreset::Maze(MazePreset {
        width,
        height,
        walls,
        dots,
        pacman,
        monster,
    }))
}

fn parse_hex_color(s: &str) -> Option<[u8; 3]> {
    let s = s.trim_start_matches('#');
    if s.len() != 6 || !s.is_ascii() {
        return None;
    }
    let v = u32::from_str_radix(s, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strip_with_palette() {
        let p = parse_map(
            "gamegen-map 1\ngame traveler\npalette X 102030 20 # mine\nstart 1\noutside empty\nstrip\nR.X\nb\n",
        )
        .unwrap();
        let s = p.as_strip().unwrap();
        assert_eq!(s.slots.len(), 4);
        assert!(s.slots[1].is_none());
        assert_eq!(s.slots[2].unwrap().color, [0x10, 0x20, 0x30]);
        assert_eq!(s.slots[2].unwrap().height, 20);
        assert_eq!(s.slots[3].unwrap().height, 28);
        assert_eq!(s.start, 1);
        assert_eq!(s.outside, Outside::Empty);
    }

    #[test]
    fn parses_maze() {
        let p = parse_map("gamegen-map 1\ngame pacman\nmaze\n#####\n#P.M#\n#####\n").unwrap();
        let m = p.as_maze().unwrap();
        assert_eq!((m.width, m.height), (5, 3));
        assert_eq!(m.pacman, Some((1, 1)));
        assert_eq!(m.monster, Some((3, 1)));
        assert!(m.dots[5 + 2]);
        assert!(m.walls[0]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("hello", "line 1"),
            ("gamegen-map 2\n", "version"),
            ("gamegen-map 1\ngame traveler\nstrip\nR?R\n", "line 4"),
            ("gamegen-map 1\ngame pacman\nmaze\n###\n#P\n", "line 5"),
            ("gamegen-map 1\ngame pacman\nmaze\n#PP#\n", "more than one"),
            (
                "gamegen-map 1\ngame traveler\nstart 9\nstrip\nRR\n",
                "past the strip",
            ),
            ("gamegen-map 1\ngame pong\n", "pong"),
            ("gamegen-map 1\ngame traveler\nmaze\n#\n", "strip"),
        ];
        for (text, want) in cases {
            let err = parse_map(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: got '{err}', wanted '{want}'");
        }
    }

    #[test]
    fn shipped_presets_parse() {
        parse_map(super::super::traveler::EXAMPLE_STRIP).unwrap();
        parse_map(super::super::pacman::DEFAULT_MAZE).unwrap();
    }
}
