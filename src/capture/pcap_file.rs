//! Capture files (pcap and pcapng) as a [`Source`].
//!
//! Reading is delegated to the `pcap-parser` crate (streaming, zero-copy over its buffer,
//! detects pcap/pcapng and byte order from the magic number, whatever the file is called).
//! This module maps link types, computes packet-clock timestamps with checked arithmetic
//! (pcapng `if_tsresol`/`if_tsoffset`, nanosecond pcap), and turns a corrupt or truncated
//! tail into a clean end of file with a warning, as tcpdump does, rather than an error.
//!
//! The buffer is small enough to stay in the CPU cache (512 KiB) and is compacted only when
//! a record does not fit, so each byte is copied once, by the kernel. (Memory-mapping was
//! measured too: page faults cost as much as the copy saved, and the mapped file then
//! counts as resident memory.)
//!
//! Invariants: memory is bounded by the read buffer, which grows only to hold one record
//! and never past [`MAX_RECORD_BYTES`].

use std::fs::File;
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use super::{CaptureError, Frame, Next, Source};
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
    /// Seconds added to every timestamp.
    offset_secs: i64,
}

/// A pcap or pcapng file being read.
pub struct PcapFileSource {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Bytes of the last returned block still to be consumed (the frame borrowed them).
    pending: usize,
    /// Interfaces of the current pcapng section, or the single pcap "interface".
    interfaces: Vec<Interface>,
    file_bytes: u64,
    ending: Option<Ending>,
}

impl PcapFileSource {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// The file cannot be opened, is empty, or is neither pcap nor pcapng.
    pub fn open(path: &Path) -> Result<PcapFileSource, CaptureError> {
        let file_err = |message: String| CaptureError::File {
            path: path.to_owned(),
            message,
        };
        let file = File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
        let file_bytes = file.metadata().map_or(0, |m| m.len());
        let reader = pcap_parser::create_reader(BUFFER_BYTES, file).map_err(|e| match e {
            PcapError::Eof => file_err("empty file".to_owned()),
            PcapError::HeaderNotRecognized => {
                file_err("not a pcap or pcapng file (unknown magic number)".to_owned())
            }
            other => file_err(format!("cannot read header: {}", describe(&other))),
        })?;
        Ok(PcapFileSource {
            path: path.to_owned(),
            reader,
            pending: 0,
            interfaces: Vec::new(),
            file_bytes,
            ending: None,
        })
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
}

/// The interface description for a link type, or the error naming file and type.
fn interface(
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
    Ok(Interface {
        link,
        units_per_sec,
        offset_secs,
    })
}

/// Handles one block: records interfaces, and for a packet block returns where its bytes
/// are, relative to `base` (the start of the reader's unconsumed data).
fn locate(
    path: &Path,
    interfaces: &mut Vec<Interface>,
    block: PcapBlockOwned<'_>,
    base: usize,
) -> Result<Option<Located>, CaptureError> {
    let offset_in = |data: &[u8]| (data.as_ptr() as usize).saturating_sub(base);
    Ok(match block {
        PcapBlockOwned::LegacyHeader(h) => {
            let units = if h.is_nanosecond_precision() {
                1_000_000_000
            } else {
                1_000_000
            };
            *interfaces = vec![interface(path, h.network.0, units, 0)?];
            None
        }
        PcapBlockOwned::Legacy(b) => interfaces.first().map(|&i| Located {
            ts: timestamp_split(u64::from(b.ts_sec), u64::from(b.ts_usec), i),
            link: i.link,
            wire_len: b.origlen.max(b.caplen),
            start: offset_in(b.data),
            len: b.data.len().min(b.caplen as usize),
        }),
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            interfaces.clear();
            None
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            let units = idb.ts_resolution().unwrap_or(1_000_000).max(1);
            interfaces.push(interface(path, idb.linktype.0, units, idb.ts_offset())?);
            None
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let iface = usize::try_from(epb.if_id)
                .ok()
                .and_then(|i| interfaces.get(i));
            iface.map(|&i| Located {
                ts: timestamp_units((u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low), i),
                link: i.link,
                wire_len: epb.origlen.max(epb.caplen),
                start: offset_in(epb.data),
                len: epb.data.len().min(epb.caplen as usize),
            })
        }
        // Simple packet blocks carry no timestamp; they are rare and get the epoch.
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => interfaces.first().map(|&i| Located {
            ts: Timestamp::ZERO,
            link: i.link,
            wire_len: spb.origlen,
            start: offset_in(spb.data),
            len: spb.data.len().min(spb.origlen as usize),
        }),
        PcapBlockOwned::NG(_) => None,
    })
}

/// What the next block is.
enum Step<'a> {
    /// A block and the bytes it spans.
    Block(usize, PcapBlockOwned<'a>),
    /// The end of the file.
    End,
    /// A truncated or corrupt record: reading stops here, for this reason.
    Stop(String),
    /// The buffer needs more data, growing it first if `grow` (the record does not fit).
    Refill { grow: bool },
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

/// One step of the streaming reader: consumes the previous block, then parses the next,
/// returning the buffer base its offsets are relative to.
fn stream_step(reader: &mut (dyn PcapReaderIterator + Send), pending: usize) -> (usize, Step<'_>) {
    // No shift on consume: the buffer is compacted only when a record does not fit
    // (`refill`), so almost no bytes are moved twice.
    reader.consume_noshift(pending);
    // Offsets are relative to the unconsumed data, which `next` parses in place (only
    // `consume`/`refill` move the buffer).
    let base = reader.data().as_ptr() as usize;
    let step = match reader.next() {
        Ok((consumed, block)) => Step::Block(consumed, block),
        Err(PcapError::Eof) => Step::End,
        Err(PcapError::Incomplete(_)) => Step::Refill { grow: false },
        Err(PcapError::BufferTooSmall) => Step::Refill { grow: true },
        Err(PcapError::UnexpectedEof) => Step::Stop("last record is cut short".to_owned()),
        Err(e) => Step::Stop(format!("corrupt record ({})", describe(&e))),
    };
    (base, step)
}

/// Reads more of the file into the streaming buffer, first doubling it if `grow`.
fn refill(reader: &mut (dyn PcapReaderIterator + Send), grow: bool) -> Result<(), String> {
    if grow {
        let size = reader.data().len().saturating_mul(2).max(BUFFER_BYTES * 2);
        if size > MAX_RECORD_BYTES || !reader.grow(size) {
            return Err(format!("record larger than {MAX_RECORD_BYTES} bytes"));
        }
    }
    reader
        .refill()
        .map_err(|_| "read error while refilling".to_owned())
}

/// Where a packet's bytes sit in the reader's buffer, found before re-borrowing it.
struct Located {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    start: usize,
    len: usize,
}

impl Source for PcapFileSource {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        if self.ending.is_some() {
            return Ok(Next::End);
        }
        let located = loop {
            let pending = std::mem::take(&mut self.pending);
            let (base, step) = stream_step(self.reader.as_mut(), pending);
            let (consumed, block) = match step {
                Step::Block(consumed, block) => (consumed, block),
                Step::End => {
                    self.ending = Some(Ending::Complete);
                    return Ok(Next::End);
                }
                Step::Stop(why) => return Ok(self.stop(why)),
                Step::Refill { grow } => {
                    if let Err(why) = refill(self.reader.as_mut(), grow) {
                        return Ok(self.stop(why));
                    }
                    continue;
                }
            };
            let located = locate(&self.path, &mut self.interfaces, block, base)?;
            self.pending = consumed;
            if let Some(l) = located {
                break l;
            }
        };
        let data = self
            .reader
            .data()
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
        let consumed = self.reader.consumed();
        (self.file_bytes > 0).then(|| (consumed as f64 / self.file_bytes as f64).min(1.0))
    }
}

/// Timestamp from whole seconds plus a fraction in the interface's units.
fn timestamp_split(secs: u64, fraction: u64, i: Interface) -> Timestamp {
    let nanos = u128::from(fraction) * 1_000_000_000 / u128::from(i.units_per_sec.max(1));
    let secs = secs.saturating_add_signed(i.offset_secs);
    Timestamp::from_secs_nanos(secs, u64::try_from(nanos).unwrap_or(u64::MAX))
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

    #[test]
    fn unsupported_link_type_names_file_and_type() {
        let f = write_temp(&pcap_bytes(105, false, &[(1, 0, b"x")]));
        let mut src = PcapFileSource::open(f.path()).unwrap();
        let err = src.next().unwrap_err().to_string();
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        assert!(
            err.contains("unsupported link type 105 (IEEE802_11)"),
            "{err}"
        );
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
        let err = PcapFileSource::open(f.path()).err().unwrap().to_string();
        assert!(err.contains("not a pcap or pcapng file"), "{err}");
        let f = write_temp(b"");
        let err = PcapFileSource::open(f.path()).err().unwrap().to_string();
        assert!(err.contains("empty file"), "{err}");
    }

    #[test]
    fn pcapng_timestamps_use_interface_resolution_without_overflow() {
        let i = Interface {
            link: LinkType::Ethernet,
            units_per_sec: 1_000_000_000,
            offset_secs: 0,
        };
        assert_eq!(
            timestamp_units(1_500_000_000, i),
            Timestamp::from_secs_nanos(1, 500_000_000)
        );
        let i = Interface {
            link: LinkType::Ethernet,
            units_per_sec: 1 << 20,
            offset_secs: -5,
        };
        assert!(timestamp_units(u64::MAX, i).as_nanos() > 0);
        assert_eq!(
            timestamp_split(3, 0, i),
            Timestamp::from_secs_nanos(0, 0),
            "offset saturates at zero"
        );
    }
}
