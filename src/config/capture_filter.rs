//! `capture.filter`: a classic BPF program, as `tcpdump -ddd` prints it, that the kernel
//! runs on every frame before the capture ring.
//!
//! Owns [`CaptureFilter`] and its parsing and checks. netwarden takes the program
//! compiled rather than a tcpdump expression: compiling one needs libpcap, a C library
//! the daemon would otherwise not link, and the operator's own tcpdump compiles exactly
//! what they tested with it (`tcpdump -i eth0 -ddd 'not vlan 200'` on the interface
//! itself, so VLAN tests use the kernel's VLAN metadata).
//!
//! # Checks
//! The count on the first line matches the instructions; every field is in range; the
//! program ends in a return; jumps land inside it. Returns must be constants (`ret #k`):
//! the capture caps each at the snap length, which a `ret a` (the accumulator) would
//! escape. The kernel checks the rest when the socket takes the program.

use serde::{Deserialize, Serialize};

/// Most instructions a socket filter may have (the kernel's `BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// Instruction classes and fields the checks look at (`linux/filter.h`).
const CLASS_MASK: u16 = 0x07;
const CLASS_JMP: u16 = 0x05;
const CLASS_RET: u16 = 0x06;
const OP_MASK: u16 = 0xf0;
const OP_JA: u16 = 0x00;
const RVAL_MASK: u16 = 0x18;
const RVAL_K: u16 = 0x00;

/// One instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterInstruction {
    /// Operation.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

impl FilterInstruction {
    /// A `ret #k`: returns a constant (bytes to keep; 0 drops the frame).
    pub fn is_return_constant(self) -> bool {
        self.code & CLASS_MASK == CLASS_RET && self.code & RVAL_MASK == RVAL_K
    }
}

/// A checked classic BPF program (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaptureFilter {
    instructions: Vec<FilterInstruction>,
    /// The program as written, for `Serialize`.
    text: String,
}

impl CaptureFilter {
    /// The instructions, in order.
    pub fn instructions(&self) -> &[FilterInstruction] {
        &self.instructions
    }
}

impl From<CaptureFilter> for String {
    fn from(f: CaptureFilter) -> String {
        f.text
    }
}

impl TryFrom<String> for CaptureFilter {
    type Error = String;

    /// Reads `tcpdump -ddd` output: the instruction count, then one `code jt jf k` per
    /// instruction, separated by newlines or commas (as `tcpdump -ddd | tr '\n' ,` gives).
    fn try_from(text: String) -> Result<CaptureFilter, String> {
        let mut lines = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let count: usize = lines
            .next()
            .ok_or("empty: expected `tcpdump -ddd` output")?
            .parse()
            .map_err(|_| "the first line must be the instruction count (`tcpdump -ddd` output)")?;
        if !(1..=MAX_INSTRUCTIONS).contains(&count) {
            return Err(format!("1 to {MAX_INSTRUCTIONS} instructions, got {count}"));
        }
        let instructions = lines
            .enumerate()
            .map(|(i, line)| parse_instruction(line).map_err(|e| format!("instruction {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if instructions.len() != count {
            return Err(format!(
                "the first line announces {count} instructions, {} follow",
                instructions.len()
            ));
        }
        check(&instructions)?;
        Ok(CaptureFilter { instructions, text })
    }
}

/// One `code jt jf k` line.
fn parse_instruction(line: &str) -> Result<FilterInstruction, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [code, jt, jf, k] = fields.as_slice() else {
        return Err(format!("expected `code jt jf k`, got `{line}`"));
    };
    let field = |name: &str, v: &str| format!("{name} `{v}` out of range");
    Ok(FilterInstruction {
        code: code.parse().map_err(|_| field("code", code))?,
        jt: jt.parse().map_err(|_| field("jt", jt))?,
        jf: jf.parse().map_err(|_| field("jf", jf))?,
        k: k.parse().map_err(|_| field("k", k))?,
    })
}

/// The structural checks of the module doc.
fn check(program: &[FilterInstruction]) -> Result<(), String> {
    let len = program.len();
    if program
        .last()
        .is_none_or(|last| last.code & CLASS_MASK != CLASS_RET)
    {
        return Err("the program must end with a return".to_owned());
    }
    for (i, ins) in program.iter().enumerate() {
        let class = ins.code & CLASS_MASK;
        if class == CLASS_RET && !ins.is_return_constant() {
            return Err(format!(
                "instruction {i}: returns must be constants (`ret #k`), so the snap length \
                 applies; recompile without `ret a`"
            ));
        }
        if class == CLASS_JMP {
            let lands = |offset: usize| {
                i.checked_add(1)
                    .and_then(|next| next.checked_add(offset))
                    .is_some_and(|target| target < len)
            };
            let inside = if ins.code & OP_MASK == OP_JA {
                usize::try_from(ins.k).is_ok_and(lands)
            } else {
                lands(usize::from(ins.jt)) && lands(usize::from(ins.jf))
            };
            if !inside {
                return Err(format!(
                    "instruction {i}: jumps past the end of the program"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcpdump -ddd -y EN10MB 'not udp'`.
    const NOT_UDP: &str = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 17\n21 0 6 34525\n\
        48 0 0 20\n21 3 0 17\n21 0 3 44\n48 0 0 54\n21 0 1 17\n6 0 0 0\n6 0 0 262144\n";

    fn parse(text: &str) -> Result<CaptureFilter, String> {
        CaptureFilter::try_from(text.to_owned())
    }

    #[test]
    fn tcpdump_output_is_read_with_newlines_or_commas() {
        let f = parse(NOT_UDP).unwrap();
        assert_eq!(f.instructions().len(), 12);
        assert_eq!(
            f.instructions()[3],
            FilterInstruction {
                code: 21,
                jt: 6,
                jf: 7,
                k: 17
            }
        );
        let commas = NOT_UDP.trim().replace('\n', ",");
        assert_eq!(parse(&commas).unwrap().instructions(), f.instructions());
    }

    #[test]
    fn malformed_programs_are_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("two\n6 0 0 0", "instruction count"),
            ("2\n6 0 0 0", "announces 2 instructions, 1 follow"),
            ("1\n6 0 0", "expected `code jt jf k`"),
            ("1\n6 0 300 0", "jf `300` out of range"),
            ("1\n40 0 0 12", "must end with a return"),
            ("2\n22 0 0 0\n6 0 0 0", "returns must be constants"),
            ("2\n21 1 0 17\n6 0 0 0", "jumps past the end"),
            ("2\n5 0 0 1\n6 0 0 0", "jumps past the end"),
            ("0", "1 to 4096 instructions"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
