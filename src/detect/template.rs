//! Annotation templates: `{{ field }}` replaced by a field of the alert.
//!
//! Owns [`render`]. Runs only when an alert record is made (a transition), never per
//! packet. An unknown field is left as written, so a typo shows in the alert rather than
//! vanishing.

use crate::alert::Alert;

/// Replaces `{{ field }}` in `template` by the alert's field (empty when absent); unknown
/// fields are left as written.
pub(super) fn render(template: &str, a: &Alert) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = after.find("}}") else {
            out.push_str(after);
            return out;
        };
        let (inner, tail) = after.split_at(close);
        let field = inner.trim_start_matches('{').trim();
        let opt = |v: Option<String>| v.unwrap_or_default();
        let value = match field {
            "rule" => Some(a.rule.clone()),
            "kind" => Some(a.kind.as_str().to_owned()),
            "severity" => Some(a.severity.as_str().to_owned()),
            "src" => Some(opt(a.src.map(|s| s.to_string()))),
            "dst" => Some(opt(a.dst.map(|s| s.to_string()))),
            "port" => Some(opt(a.port.map(|s| s.to_string()))),
            "network" => Some(opt(a.network.clone())),
            "domain" => Some(opt(a.domain.clone())),
            "host_group" | "protection_level" | "data_grade" => {
                Some(opt(a.labels.get(field).cloned()))
            }
            "value" => Some(format!("{:.1}", a.value)),
            "threshold" => Some(format!("{:.1}", a.threshold)),
            _ => None,
        };
        if let Some(v) = value {
            out.push_str(&v);
        } else {
            out.push_str(inner);
            out.push_str("}}");
        }
        rest = tail.get(2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}
