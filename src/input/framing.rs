//! Framing for stream inputs (`unix_tcp`, `tcp`): splits a byte stream into
//! messages by newline or by RFC 6587 octet counting (`<len> <payload>`).
//! With `Auto` each frame is classified by its first byte: a digit means
//! octet counting, anything else (syslog's `<`) a newline-terminated line.
//!
//! Invariants: a frame longer than `max` is skipped whole and reported as
//! oversize, never truncated into a half message; the framer's buffer never
//! holds more than `max` bytes plus one read.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Auto,
    Newline,
    OctetCounting,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Message(&'a [u8]),
    /// A frame over the size limit was skipped.
    Oversize,
    /// An octet-counting header that is not `<digits> `: the stream cannot
    /// be resynchronised and the connection should be closed.
    Corrupt,
}

#[derive(Debug)]
pub struct Framer {
    mode: Framing,
    max: usize,
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// Bytes still to discard from an oversize frame (octet counting), or
    /// `usize::MAX` to discard up to the next newline.
    skip: usize,
}

impl Framer {
    pub fn new(mode: Framing, max: usize) -> Self {
        Framer { mode, max: max.max(1), buf: Vec::new(), pos: 0, skip: 0 }
    }

    /// Append freshly read bytes.
    pub fn extend(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > self.max {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Frame<'_>> {
        loop {
            if self.skip > 0 && !self.discard() {
                return None;
            }
            let rest = &self.buf[self.pos..];
            let first = *rest.first()?;
            let octets = match self.mode {
                Framing::Newline => false,
                Framing::OctetCounting => true,
                Framing::Auto => first.is_ascii_digit(),
            };
            if !octets {
                // Skip the empty lines between frames.
                if first == b'\n' {
                    self.pos += 1;
                    continue;
                }
                return match memchr::memchr(b'\n', rest) {
                    Some(end) => {
                        let start = self.pos;
                        self.pos += end + 1;
                        let mut line = &self.buf[start..start + end];
                        if let Some(l) = line.strip_suffix(b"\r") {
                            line = l;
                        }
                        if line.len() > self.max {
                            return Some(Frame::Oversize);
                        }
                        Some(Frame::Message(line))
                    }
                    None if rest.len() > self.max => {
                        self.pos = self.buf.len();
                        self.skip = usize::MAX;
                        Some(Frame::Oversize)
                    }
                    None => None,
                };
            }
            if first == b'\n' {
                // Optional newline after an octet-counted frame.
                self.pos += 1;
                continue;
            }
            let Some(space) = rest.iter().position(|&b| b == b' ') else {
                if rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
                    return Some(Frame::Corrupt);
                }
                return None;
            };
            let digits = &rest[..space];
            if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
                return Some(Frame::Corrupt);
            }
            let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
            if len > self.max {
                self.pos += space + 1;
                self.skip = len;
                return Some(Frame::Oversize);
            }
            if rest.len() < space + 1 + len {
                return None;
            }
            let start = self.pos + space + 1;
            self.pos = start + len;
            return Some(Frame::Message(&self.buf[start..start + len]));
        }
    }

    /// Drop bytes of a skipped frame; true once it is fully skipped.
    fn discard(&mut self) -> bool {
        let rest = &self.buf[self.pos..];
        if self.skip == usize::MAX {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    self.pos += end + 1;
                    self.skip = 0;
                    true
                }
                None => {
                    self.pos = self.buf.len();
                    false
                }
            }
        } else {
            let n = self.skip.min(rest.len());
            self.pos += n;
            self.skip -= n;
            self.skip == 0
        }
    }

    /// Bytes of an unterminated tail (lost if the peer closes now).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &mut Framer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(fr) = f.next() {
            out.push(match fr {
                Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                Frame::Oversize => "<oversize>".into(),
                Frame::Corrupt => {
                    out.push("<corrupt>".into());
                    break;
                }
            });
        }
        out
    }

    #[test]
    fn newline_frames_across_reads_with_crlf_and_blank_lines() {
        let mut f = Framer::new(Framing::Auto, 100);
        f.extend(b"<13>one\r\n\n<13>tw");
        assert_eq!(frames(&mut f), vec!["<13>one"]);
        f.extend(b"o\n");
        assert_eq!(frames(&mut f), vec!["<13>two"]);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn octet_counting_with_embedded_newline() {
        let mut f = Framer::new(Framing::Auto, 100);
        f.extend(b"11 <13>a\nb c d8 <13>x");
        assert_eq!(frames(&mut f), vec!["<13>a\nb c d"]);
        f.extend(b"yzw\n");
        assert_eq!(frames(&mut f), vec!["<13>xyzw"]);
    }

    #[test]
    fn oversize_frames_are_skipped_not_split() {
        let mut f = Framer::new(Framing::Auto, 5);
        f.extend(b"<13>too long line\n<1>ok\n");
        assert_eq!(frames(&mut f), vec!["<oversize>", "<1>ok"]);
        f.extend(b"20 0123456789");
        assert_eq!(frames(&mut f), vec!["<oversize>"]);
        f.extend(b"0123456789<1>k\n");
        assert_eq!(frames(&mut f), vec!["<1>k"]);
        // An unterminated line longer than the limit is skipped up to its newline.
        f.extend(b"<13>xxxxxxxxxxxxxxxx");
        assert_eq!(frames(&mut f), vec!["<oversize>"]);
        f.extend(b"xxxx\n<2>y\n");
        assert_eq!(frames(&mut f), vec!["<2>y"]);
    }

    #[test]
    fn corrupt_octet_header() {
        let mut f = Framer::new(Framing::OctetCounting, 100);
        f.extend(b"12a <13>x");
        assert_eq!(frames(&mut f), vec!["<corrupt>"]);
    }
}
