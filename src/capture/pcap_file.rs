//! Capture files (pcap and pcapng) as a [`Source`].
//!
//! Record formats are parsed by the `pcap-parser` crate (legacy pcap in either byte order,
//! nanosecond and "modified" variants; pcapng blocks in the byte order of their section),
//! which also tells pcap from pcapng by the magic number, whatever the file is called.
//! This module owns only the read buffer around those parsers: it maps link types,
//! computes packet-clock timestamps with checked arithmetic (pcapng `if_tsresol`/
//! `if_tsoffset`, nanosecond pcap), and turns a corrupt or truncated tail into a clean end
//! of file with a warning, as tcpdump does, rather than an error. Failing to read the file
//! is an error, which keeps the `io::Error` as its source.
//!
//! The buffer is ours rather than the crate's streaming reader because this is the
//! per-packet path of every replay: calling the record parser directly on a plain slice
//! (no boxed reader, no block enum wrapped in a result per record) halved the capture
//! cost per packet. It is small enough to stay in the CPU cache (512 KiB) and is compacted
//! only when a record does not fit, so each byte is copied once, by the kernel.
//! (Memory-mapping was measured too: page faults cost as much as the copy saved, and the
//! mapped file then counts as resident memory.)
//!
//! Invariants: memory is bounded by the read buffer, which grows only to hold one record
//! and never past [`MAX_RECORD_BYTES`]; `start <= end <= buf.len()` always.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use pcap_parser::nom::{self, Needed};
use pcap_parser::pcapng::Block;
use pcap_parser::{LegacyPcapBlock, PcapError, PcapHeader};

use super::{CaptureError, FileError, Frame, Next, Source};
use crate::decode::LinkType;
use crate::timestamp::Timestamp;

/// Initial read buffer.
const BUFFER_BYTES: usize = 512 << 10;
/// Largest single record accepted (pcapng blocks with GRO super-frames are ~64 KiB).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// How a capture file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Read to the end.
    Complete,
    /// The last record was cut short or a record was corrupt; reading stopped there.
    Truncated(String),
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Nanoseconds per unit when that is a whole number (microsecond and nanosecond
    /// resolutions), so the common case multiplies instead of dividing a `u128`.
    nanos_per_unit: Option<u64>,
    /// Seconds added to every timestamp.
    offset_secs: i64,
}

/// The record parser of a file.
#[derive(Clone, Copy, Debug)]
enum Format {
    /// Legacy pcap, little-endian.
    LegacyLe,
    /// Legacy pcap, big-endian.
    LegacyBe,
    /// Legacy pcap, Kuznetzov's "modified" format (longer record headers).
    LegacyModified,
    /// pcapng, in the byte order of the current section.
    Ng { big_endian: bool },
}

/// A pcap or pcapng file being read.
pub struct PcapFileSource {
    path: PathBuf,
    file: File,
    /// Read buffer; the unconsumed bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `read` returned 0: no more bytes will come.
    exhausted: bool,
    format: Format,
    /// A legacy pcap header whose link type is yet to be checked (on the first `next`, so
    /// an unsupported type is reported like any other read error).
    header: Option<PcapHeader>,
    /// Interfaces of the current pcapng section, or the single pcap "interface".
    interfaces: Vec<Interface>,
    file_bytes: u64,
    /// File offset of `buf[start]`.
    consumed: u64,
    ending: Option<Ending>,
}

impl PcapFileSource {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// The file cannot be opened, is empty, or is neither pcap nor pcapng.
    pub fn open(path: &Path) -> Result<PcapFileSource, CaptureError> {
        let file_err = |source: FileError| CaptureError::File {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(|e| file_err(FileError::Open(e)))?;
        let file_bytes = file.metadata().map_or(0, |m| m.len());
        let mut source = PcapFileSource {
            path: path.to_owned(),
            file,
            buf: vec![0; BUFFER_BYTES],
            start: 0,
            end: 0,
            exhausted: false,
            format: Format::LegacyLe,
            header: None,
            interfaces: Vec::new(),
            file_bytes,
            consumed: 0,
            ending: None,
        };
        source
            .fill()
            .map_err(|e| file_err(FileError::ReadHeader(e)))?;
        let data = source.data();
        if data.is_empty() {
            return Err(file_err(FileError::Empty));
        }
        // The same test, in the same order, as `pcap_parser::create_reader`.
        if pcap_parser::parse_sectionheaderblock(data).is_ok() {
            // The section header block itself is parsed by `next`, which takes the byte
            // order from it.
            source.format = Format::Ng { big_endian: false };
            return Ok(source);
        }
        let header = match pcap_parser::parse_pcap_header(data) {
            Ok((_, header)) => header,
            Err(nom::Err::Incomplete(_)) => return Err(file_err(FileError::HeaderCutShort)),
            Err(_) => return Err(file_err(FileError::UnknownFormat)),
        };
        source.format = if header.is_modified_format() {
            Format::LegacyModified
        } else if header.is_bigendian() {
            Format::LegacyBe
        } else {
            Format::LegacyLe
        };
        source.advance(header.size());
        source.header = Some(header);
        Ok(source)
    }

    /// How the file ended; `None` until the end is reached.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    fn stop(&mut self, why: String) -> Next<'_> {
        tracing::warn!(path = %self.path.display(), reason = %why, "Capture file ends early; packets after this point are not read.");
        self.ending = Some(Ending::Truncated(why));
        Next::End
    }

    /// The unconsumed bytes.
    fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Marks `n` more bytes as consumed (at most what is buffered).
    fn advance(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.consumed = self.consumed.saturating_add(n as u64);
    }

    /// Makes room for at least `needed` more bytes than are buffered: moves the unconsumed
    /// bytes to the front, then grows the buffer if it is still too small. False when it
    /// would have to grow past [`MAX_RECORD_BYTES`].
    fn make_room(&mut self, needed: usize) -> bool {
        let pending = self.end - self.start;
        self.buf.copy_within(self.start..self.end, 0);
        self.start = 0;
        self.end = pending;
        let want = pending.saturating_add(needed);
        if want > self.buf.len() {
            if want > MAX_RECORD_BYTES {
                return false;
            }
            let size = want
                .max(self.buf.len().saturating_mul(2))
                .min(MAX_RECORD_BYTES);
            self.buf.resize(size, 0);
        }
        true
    }

    /// Reads until the buffer is full or the file ends.
    fn fill(&mut self) -> std::io::Result<()> {
        while self.end < self.buf.len() {
            let space = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.file.read(space) {
                Ok(0) => {
                    self.exhausted = true;
                    break;
                }
                Ok(n) => self.end += n.min(space.len()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Parses the next record in the buffer (see [`Parsed`]).
    #[inline]
    fn parse(&mut self) -> Parsed {
        let base = self.buf.as_ptr() as usize;
        let data = self.buf.get(self.start..self.end).unwrap_or_default();
        let offset_in = |bytes: &[u8]| (bytes.as_ptr() as usize).saturating_sub(base);
        // `rest` is the unparsed suffix of `data`; saturating keeps a misbehaving parser
        // from panicking here.
        let used = |rest: &[u8]| data.len().saturating_sub(rest.len());
        let legacy = |(rest, b): (&[u8], LegacyPcapBlock<'_>), i: Option<&Interface>| {
            let located = i.map(|&i| Located {
                ts: timestamp_split(u64::from(b.ts_sec), u64::from(b.ts_usec), i),
                link: i.link,
                wire_len: b.origlen.max(b.caplen),
                start: offset_in(b.data),
                len: b.data.len().min(b.caplen as usize),
            });
            Parsed::Record(used(rest), located)
        };
        let interface = self.interfaces.first();
        match self.format {
            Format::LegacyLe => on_record(pcap_parser::parse_pcap_frame(data), |r| {
                legacy(r, interface)
            }),
            Format::LegacyBe => on_record(pcap_parser::parse_pcap_frame_be(data), |r| {
                legacy(r, interface)
            }),
            Format::LegacyModified => {
                on_record(pcap_parser::parse_pcap_frame_modified(data), |r| {
                    legacy(r, interface)
                })
            }
            Format::Ng { big_endian } => {
                if let Some(why) = short_block(data, big_endian) {
                    return Parsed::Corrupt(why);
                }
                let parsed = if big_endian {
                    pcap_parser::parse_block_be(data)
                } else {
                    pcap_parser::parse_block_le(data)
                };
                let (rest, block) = match parsed {
                    Ok(ok) => ok,
                    Err(e) => return Parsed::from_error(e),
                };
                let used = used(rest);
                let located = match block {
                    Block::SectionHeader(shb) => {
                        self.format = Format::Ng {
                            big_endian: shb.big_endian(),
                        };
                        self.interfaces.clear();
                        None
                    }
                    Block::InterfaceDescription(idb) => {
                        let units = idb.ts_resolution().unwrap_or(1_000_000).max(1);
                        match interface_of(&self.path, idb.linktype.0, units, idb.ts_offset()) {
                            Ok(i) => self.interfaces.push(i),
                            Err(e) => return Parsed::Unsupported(Box::new(e)),
                        }
                        None
                    }
                    Block::EnhancedPacket(epb) => usize::try_from(epb.if_id)
                        .ok()
                        .and_then(|i| self.interfaces.get(i))
                        .map(|&i| Located {
                            ts: timestamp_units(
                                (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                                i,
                            ),
                            link: i.link,
                            wire_len: epb.origlen.max(epb.caplen),
                            start: offset_in(epb.data),
                            len: epb.data.len().min(epb.caplen as usize),
                        }),
                    // Simple packet blocks carry no timestamp; they are rare and get the epoch.
                    Block::SimplePacket(spb) => self.interfaces.first().map(|&i| Located {
                        ts: Timestamp::ZERO,
                        link: i.link,
                        wire_len: spb.origlen,
                        start: offset_in(spb.data),
                        len: spb.data.len().min(spb.origlen as usize),
                    }),
                    _ => None,
                };
                Parsed::Record(used, located)
            }
        }
    }
}

/// The pcapng block type of a section header, the same in both byte orders.
const SECTION_HEADER_BLOCK: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Why the pcapng block at the start of `data` cannot be valid, when its length is less
/// than the 12 bytes of its own framing (type, length, trailing length). pcap-parser
/// 0.17 subtracts 12 from the length of some block types unchecked (a process
/// information block of length 5 overflows). A section header is left to the parser: its
/// length is in the byte order its own magic gives.
fn short_block(data: &[u8], big_endian: bool) -> Option<String> {
    let (block_type, rest) = data.split_first_chunk::<4>()?;
    let length = rest.first_chunk::<4>()?;
    let length = if big_endian {
        u32::from_be_bytes(*length)
    } else {
        u32::from_le_bytes(*length)
    };
    (length < 12 && *block_type != SECTION_HEADER_BLOCK)
        .then(|| format!("block length {length} is below the 12 bytes of its framing"))
}

/// What the buffer holds next.
enum Parsed {
    /// A record of this many bytes, and where its packet is if it is a packet.
    Record(usize, Option<Located>),
    /// A record that continues past the buffered bytes: at least this many more are needed.
    Incomplete(usize),
    /// A corrupt record, for this reason.
    Corrupt(String),
    /// A pcapng interface with a link type netwarden does not decode (boxed: the error is
    /// rare and large, and this enum is returned once per record).
    Unsupported(Box<CaptureError>),
}

impl Parsed {
    fn from_error(e: nom::Err<PcapError<&[u8]>>) -> Parsed {
        match e {
            nom::Err::Incomplete(Needed::Size(n)) => Parsed::Incomplete(n.get()),
            nom::Err::Incomplete(Needed::Unknown) => Parsed::Incomplete(1),
            nom::Err::Error(e) | nom::Err::Failure(e) => Parsed::Corrupt(describe(&e)),
        }
    }
}

/// Maps a record parser's result: `f` on success, else the error as a [`Parsed`].
#[inline]
fn on_record<'a, T>(
    parsed: nom::IResult<&'a [u8], T, PcapError<&'a [u8]>>,
    f: impl FnOnce((&'a [u8], T)) -> Parsed,
) -> Parsed {
    match parsed {
        Ok(ok) => f(ok),
        Err(e) => Parsed::from_error(e),
    }
}

/// The interface description for a link type, or the error naming file and type.
fn interface_of(
    path: &Path,
    linktype: i32,
    units_per_sec: u64,
    offset_secs: i64,
) -> Result<Interface, CaptureError> {
    let value = linktype.cast_unsigned();
    let link = LinkType::from_linktype(value).ok_or_else(|| CaptureError::UnsupportedLinkType {
        path: path.to_owned(),
        linktype: value,
        name: linktype_name(value),
    })?;
    let units_per_sec = units_per_sec.max(1);
    Ok(Interface {
        link,
        units_per_sec,
        nanos_per_unit: (1_000_000_000 % units_per_sec == 0).then(|| 1_000_000_000 / units_per_sec),
        offset_secs,
    })
}

/// A short description of a parse error (never the input bytes, which may be huge).
fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => format!("{kind:?}"),
        PcapError::Eof => "end of file".to_owned(),
        PcapError::BufferTooSmall => "record too large".to_owned(),
        PcapError::UnexpectedEof | PcapError::Incomplete(_) => "cut short".to_owned(),
        PcapError::ReadError => "read error".to_owned(),
        PcapError::HeaderNotRecognized => "unrecognised header".to_owned(),
    }
}

/// Where a packet's bytes sit in the read buffer, found before re-borrowing it.
struct Located {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    start: usize,
    len: usize,
}

impl Source for PcapFileSource {
    #[inline]
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.ending.is_some() {
            return Ok(Next::End);
        }
        if let Some(h) = self.header.take() {
            let units = if h.is_nanosecond_precision() {
                1_000_000_000
            } else {
                1_000_000
            };
            self.interfaces = vec![interface_of(&self.path, h.network.0, units, 0)?];
        }
        let located = loop {
            match self.parse() {
                Parsed::Record(used, located) => {
                    self.advance(used);
                    if let Some(l) = located {
                        break l;
                    }
                }
                Parsed::Incomplete(needed) => {
                    if self.exhausted {
                        if self.start == self.end {
                            self.ending = Some(Ending::Complete);
                            return Ok(Next::End);
                        }
                        return Ok(self.stop("last record is cut short".to_owned()));
                    }
                    if !self.make_room(needed) {
                        let why = format!("record larger than {MAX_RECORD_BYTES} bytes");
                        return Ok(self.stop(why));
                    }
                    self.fill().map_err(|e| CaptureError::File {
                        path: self.path.clone(),
                        source: FileError::Read(e),
                    })?;
                }
                Parsed::Corrupt(why) => return Ok(self.stop(format!("corrupt record ({why})"))),
                Parsed::Unsupported(e) => return Err(*e),
            }
        };
        let data = self
            .buf
            .get(located.start..located.start.saturating_add(located.len))
            .unwrap_or(&[]);
        let wire_len = located
            .wire_len
            .max(u32::try_from(data.len()).unwrap_or(u32::MAX));
        Ok(Next::Frame(Frame {
            ts: located.ts,
            link: located.link,
            data,
            wire_len,
        }))
    }

    #[allow(clippy::cast_precision_loss)]
    fn progress(&self) -> Option<f64> {
        (self.file_bytes > 0).then(|| (self.consumed as f64 / self.file_bytes as f64).min(1.0))
    }
}

/// Timestamp from whole seconds plus a fraction in the interface's units.
#[inline]
fn timestamp_split(secs: u64, fraction: u64, i: Interface) -> Timestamp {
    let nanos = match i.nanos_per_unit {
        // A u32 fraction times at most 10^9 fits in u64; pcapng fractions are below
        // `units_per_sec`, so the product is below 10^9.
        Some(per_unit) => fraction.saturating_mul(per_unit),
        None => {
            u64::try_from(u128::from(fraction) * 1_000_000_000 / u128::from(i.units_per_sec.max(1)))
                .unwrap_or(u64::MAX)
        }
    };
    let secs = secs.saturating_add_signed(i.offset_secs);
    Timestamp::from_secs_nanos(secs, nanos)
}

/// Timestamp from a pcapng 64-bit count of the interface's units.
fn timestamp_units(raw: u64, i: Interface) -> Timestamp {
    let units = i.units_per_sec.max(1);
    timestamp_split(raw / units, raw % units, i)
}

/// Usual names of link types netwarden does not decode, for error messages.
fn linktype_name(linktype: u32) -> &'static str {
    match linktype & 0xffff {
        6 => "IEEE802_5 token ring",
        8 => "SLIP",
        9 => "PPP",
        10 => "FDDI",
        50 => "PPP_HDLC",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        107 => "FRELAY",
        119 => "PRISM_HEADER",
        123 => "SUNATM",
        127 => "IEEE802_11_RADIOTAP",
        147..=162 => "USER",
        195 | 215 | 230 => "IEEE802_15_4",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn pcap_bytes(linktype: u32, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut out = Vec::new();
        out.extend_from_slice(&magic.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&linktype.to_le_bytes());
        for (secs, frac, data) in records {
            let len = u32::try_from(data.len()).unwrap();
            for v in [*secs, *frac, len, len + 4] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(data);
        }
        out
    }

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    type Read = (Timestamp, LinkType, Vec<u8>, u32);

    fn read_all(path: &Path) -> (Vec<Read>, Option<Ending>) {
        let mut src = PcapFileSource::open(path).unwrap();
        let mut frames = Vec::new();
        while let Next::Frame(f) = src.next().unwrap() {
            frames.push((f.ts, f.link, f.data.to_vec(), f.wire_len));
        }
        (frames, src.ending().cloned())
    }

    #[test]
    fn reads_microsecond_and_nanosecond_pcap() {
        let f = write_temp(&pcap_bytes(
            1,
            false,
            &[(10, 5, b"abc"), (11, 999_999, b"de")],
        ));
        let (frames, ending) = read_all(f.path());
        assert_eq!(ending, Some(Ending::Complete));
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, Timestamp::from_secs_nanos(10, 5_000));
        assert_eq!(frames[0].1, LinkType::Ethernet);
        assert_eq!(frames[0].2, b"abc");
        assert_eq!(frames[0].3, 7, "wire length comes from the record header");
        assert_eq!(frames[1].0, Timestamp::from_secs_nanos(11, 999_999_000));

        let f = write_temp(&pcap_bytes(101, true, &[(1, 7, b"x")]));
        let (frames, _) = read_all(f.path());
        assert_eq!(frames[0].0, Timestamp::from_secs_nanos(1, 7));
        assert_eq!(frames[0].1, LinkType::RawIp);
    }

    /// Asserts that reading `bytes` fails on link type 105, naming the file and the type.
    fn assert_refuses_802_11(bytes: &[u8]) {
        let f = write_temp(bytes);
        let mut src = PcapFileSource::open(f.path()).unwrap();
        let err = src.next().unwrap_err().to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(
            err.contains("unsupported link type 105 (IEEE802_11)"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_link_type_names_file_and_type() {
        assert_refuses_802_11(&pcap_bytes(105, false, &[(1, 0, b"x")]));
    }

    #[test]
    fn fcs_bits_in_the_link_type_are_masked() {
        let f = write_temp(&pcap_bytes(0x1000_0001, false, &[(1, 0, b"x")]));
        let (frames, _) = read_all(f.path());
        assert_eq!(frames[0].1, LinkType::Ethernet);
    }

    #[test]
    fn truncated_tail_ends_cleanly() {
        let mut bytes = pcap_bytes(1, false, &[(1, 0, b"abcdef"), (2, 0, b"ghijkl")]);
        bytes.truncate(bytes.len() - 3);
        let f = write_temp(&bytes);
        let (frames, ending) = read_all(f.path());
        assert_eq!(frames.len(), 1);
        assert!(matches!(ending, Some(Ending::Truncated(_))));
    }

    #[test]
    fn garbage_and_empty_files_are_clear_errors() {
        let f = write_temp(b"this is not a capture file at all....");
        let err = PcapFileSource::open(f.path()).err().unwrap();
        assert!(
            matches!(&err, CaptureError::File { path, source: FileError::UnknownFormat } if path == f.path()),
            "{err:?}"
        );
        let f = write_temp(b"");
        let err = PcapFileSource::open(f.path()).err().unwrap();
        assert!(
            matches!(
                err,
                CaptureError::File {
                    source: FileError::Empty,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_read_error_keeps_its_io_cause() {
        let dir = tempfile::tempdir().unwrap();
        let err = PcapFileSource::open(dir.path()).err().unwrap();
        assert!(
            matches!(&err, CaptureError::File { source: FileError::ReadHeader(io), .. }
                if io.kind() == std::io::ErrorKind::IsADirectory),
            "{err:?}"
        );
        // The chain, as the binary prints it: file, step, cause.
        let mut chain = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(c) = cause {
            chain = format!("{chain}: {c}");
            cause = c.source();
        }
        assert_eq!(
            chain,
            format!(
                "{}: cannot read header: Is a directory (os error 21)",
                dir.path().display()
            )
        );
    }

    #[test]
    fn pcapng_timestamps_use_interface_resolution_without_overflow() {
        let i = interface_of(Path::new("t"), 1, 1_000_000_000, 0).unwrap();
        assert_eq!(
            timestamp_units(1_500_000_000, i),
            Timestamp::from_secs_nanos(1, 500_000_000)
        );
        let i = interface_of(Path::new("t"), 1, 1 << 20, -5).unwrap();
        assert!(timestamp_units(u64::MAX, i).as_nanos() > 0);
        assert_eq!(
            timestamp_split(3, 0, i),
            Timestamp::from_secs_nanos(0, 0),
            "offset saturates at zero"
        );
    }

    /// The bytes of a little- or big-endian pcapng file: one section, one Ethernet
    /// interface with nanosecond timestamps, and an enhanced packet block per record.
    fn pcapng_bytes(big_endian: bool, records: &[(u64, &[u8])]) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        // Section header: type, length 28, byte-order magic, version 1.0, length unknown.
        out.extend_from_slice(&u32b(0x0a0d_0d0a));
        out.extend_from_slice(&u32b(28));
        out.extend_from_slice(&u32b(0x1a2b_3c4d));
        out.extend_from_slice(&u16b(1));
        out.extend_from_slice(&u16b(0));
        out.extend_from_slice(&[0xff; 8]);
        out.extend_from_slice(&u32b(28));
        // Interface description: Ethernet, snaplen 65535, if_tsresol = 9, end of options.
        out.extend_from_slice(&u32b(1));
        out.extend_from_slice(&u32b(32));
        out.extend_from_slice(&u16b(1));
        out.extend_from_slice(&u16b(0));
        out.extend_from_slice(&u32b(65_535));
        out.extend_from_slice(&u16b(9));
        out.extend_from_slice(&u16b(1));
        out.extend_from_slice(&[9, 0, 0, 0]);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&u32b(32));
        for (ts, data) in records {
            let len = u32::try_from(data.len()).unwrap();
            let padded = data.len().div_ceil(4) * 4;
            let total = 32 + u32::try_from(padded).unwrap();
            out.extend_from_slice(&u32b(6));
            out.extend_from_slice(&u32b(total));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b(u32::try_from(ts >> 32).unwrap()));
            out.extend_from_slice(&u32b(u32::try_from(ts & 0xffff_ffff).unwrap()));
            out.extend_from_slice(&u32b(len));
            out.extend_from_slice(&u32b(len + 2));
            out.extend_from_slice(data);
            out.resize(out.len() + padded - data.len(), 0);
            out.extend_from_slice(&u32b(total));
        }
        out
    }

    #[test]
    fn pcapng_interface_with_unsupported_link_type_names_file_and_type() {
        let mut bytes = pcapng_bytes(false, &[(1, b"abc")]);
        // The interface block follows the 28-byte section header; its link type comes
        // after the block type and length.
        bytes[36..38].copy_from_slice(&105u16.to_le_bytes());
        assert_refuses_802_11(&bytes);
    }

    #[test]
    fn pcapng_block_shorter_than_its_own_framing_is_corrupt_not_a_panic() {
        // Found by the pcap_file fuzz target: a process information block (type
        // 0x80000001) claiming 5 bytes made pcap-parser compute 5 - 12 and panic on
        // overflow in debug builds (and wrap in release). 12 bytes is the least any block
        // has: type, length and the trailing length.
        for big_endian in [false, true] {
            let mut bytes = pcapng_bytes(big_endian, &[]);
            for v in [0x8000_0001_u32, 5] {
                bytes.extend_from_slice(&if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                });
            }
            bytes.extend_from_slice(&[0; 12]);
            let f = write_temp(&bytes);
            let (frames, ending) = read_all(f.path());
            assert!(frames.is_empty());
            assert!(
                matches!(&ending, Some(Ending::Truncated(why)) if why.contains("block length 5")),
                "{ending:?}"
            );
        }
    }

    #[test]
    fn pcapng_in_both_byte_orders() {
        for big_endian in [false, true] {
            let f = write_temp(&pcapng_bytes(
                big_endian,
                &[(1_500_000_000, b"abcde"), (2_000_000_001, b"xy")],
            ));
            let (frames, ending) = read_all(f.path());
            assert_eq!(ending, Some(Ending::Complete), "big endian: {big_endian}");
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].0, Timestamp::from_secs_nanos(1, 500_000_000));
            assert_eq!(frames[0].1, LinkType::Ethernet);
            assert_eq!(frames[0].2, b"abcde", "padding is not packet data");
            assert_eq!(frames[0].3, 7);
            assert_eq!(frames[1].0, Timestamp::from_secs_nanos(2, 1));
            assert_eq!(frames[1].2, b"xy");
        }
    }

    #[test]
    fn records_across_buffer_refills_and_one_larger_than_the_buffer() {
        // Enough records to refill the buffer several times, each with distinct bytes, so
        // a record split across a refill would read back wrong; then one record larger
        // than the initial buffer, which must grow it.
        let small: Vec<Vec<u8>> = (0..5_000u32)
            .map(|i| {
                (0..333u32)
                    .map(|j| i.wrapping_mul(31).to_le_bytes()[0] ^ j.to_le_bytes()[0])
                    .collect()
            })
            .collect();
        let big: Vec<u8> = (0..BUFFER_BYTES + 1000)
            .map(|j| u8::try_from(j % 251).unwrap())
            .collect();
        let mut records: Vec<(u32, u32, &[u8])> = small
            .iter()
            .enumerate()
            .map(|(i, d)| (u32::try_from(i).unwrap(), 0, d.as_slice()))
            .collect();
        records.push((9_999, 0, &big));
        let bytes = pcap_bytes(1, false, &records);
        let f = write_temp(&bytes);
        let mut src = PcapFileSource::open(f.path()).unwrap();
        let mut count = 0;
        while let Next::Frame(frame) = src.next().unwrap() {
            let expected = records[count].2;
            assert_eq!(frame.data, expected, "record {count}");
            count += 1;
        }
        assert_eq!(count, records.len());
        assert_eq!(src.ending(), Some(&Ending::Complete));
        assert_eq!(src.progress(), Some(1.0));
    }

    #[test]
    fn big_endian_pcap_and_hostile_record_length() {
        let mut bytes = pcap_bytes(1, false, &[(1, 5, b"abc")]);
        // Rewrite as big-endian: magic, versions, snaplen, linktype, then the record.
        let mut be = Vec::new();
        be.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
        be.extend_from_slice(&2u16.to_be_bytes());
        be.extend_from_slice(&4u16.to_be_bytes());
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&65_535u32.to_be_bytes());
        be.extend_from_slice(&1u32.to_be_bytes());
        for v in [1u32, 5, 3, 3] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        be.extend_from_slice(b"abc");
        let f = write_temp(&be);
        let (frames, ending) = read_all(f.path());
        assert_eq!(ending, Some(Ending::Complete));
        assert_eq!(frames[0].0, Timestamp::from_secs_nanos(1, 5_000));
        assert_eq!(frames[0].2, b"abc");

        // A record claiming 4 GiB of data stops reading cleanly, without allocating it.
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.resize(bytes.len() + 100, 0);
        let f = write_temp(&bytes);
        let (frames, ending) = read_all(f.path());
        assert_eq!(frames.len(), 1);
        assert!(matches!(ending, Some(Ending::Truncated(_))), "{ending:?}");
    }
}
