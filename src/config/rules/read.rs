//! Reading `[[rules]]` tables with the TOML parser's spans.
//!
//! A rule table mixes the keys every rule has ([`RuleCommon`]) with its kind's parameters
//! ([`RuleParams`]). serde alone cannot read that shape into those two types and still
//! point at a bad key: `flatten` does not compose with `deny_unknown_fields`, and a
//! `kind`-tagged enum buffers the whole table before it reads the tag, which drops every
//! position. So [`read_rules`] splits each table itself, on the parser's spanned document
//! ([`DeTable`]): the keys `RuleCommon` declares go to it, `kind` picks the parameter
//! struct ([`RuleParams::deserialize_kind`]), and every other key goes to that struct,
//! which refuses what it does not know. Both halves are deserialised from spanned
//! tables, so each error carries the span of its key or value, and names its rule.
//!
//! Does not own: the structs, or turning spans into lines (`crate::config::error`).

use std::cell::Cell;
use std::ops::Range;

use serde::de::{Error as _, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};

use super::{RuleCommon, RuleConfig, RuleParams};
use crate::vocabulary::RuleKind;

/// A problem with one rule table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::config) struct ReadError {
    /// Where, in bytes of the file.
    pub(in crate::config) span: Range<usize>,
    /// The dotted key (`rules.threshold`; `rules` for the table as a whole).
    pub(in crate::config) key: String,
    /// What is wrong, naming the rule.
    pub(in crate::config) message: String,
}

/// The rules read from one document.
#[derive(Debug, Default)]
pub(in crate::config) struct ReadRules {
    /// Every table that could be read, in order.
    pub(in crate::config) rules: Vec<RuleConfig>,
    /// The place of each of `rules` among the document's `[[rules]]` tables.
    pub(in crate::config) positions: Vec<usize>,
    /// The problems of the tables left out.
    pub(in crate::config) errors: Vec<ReadError>,
}

/// Reads the value of a document's `rules` key (none: no rules), every table in order.
/// A table with problems is left out; its problems are returned.
pub(in crate::config) fn read_rules(value: Option<Spanned<DeValue<'_>>>) -> ReadRules {
    let mut out = ReadRules::default();
    let Some(value) = value else {
        return out;
    };
    let span = value.span();
    let DeValue::Array(tables) = value.into_inner() else {
        let message = "`rules` must be an array of tables (`[[rules]]`)".to_owned();
        let key = "rules".to_owned();
        out.errors.push(ReadError { span, key, message });
        return out;
    };
    for (index, table) in tables.into_iter().enumerate() {
        match read_rule(index, table) {
            Ok(rule) => {
                out.rules.push(rule);
                out.positions.push(index);
            }
            Err(problems) => out.errors.extend(problems),
        }
    }
    out
}

/// Where each key of a rule table is written: (key, key span, value span).
type Keys = Vec<(String, Range<usize>, Range<usize>)>;

/// What a rule table's problems are reported with.
struct RuleTable {
    /// The table's span (its `[[rules]]` header).
    span: Range<usize>,
    /// The rule as messages name it: by `name`, or by its place when it has none.
    who: String,
    keys: Keys,
}

impl RuleTable {
    /// `e` as a problem of this rule, at its span (the table's when it has none).
    fn error(&self, e: &toml::de::Error, message: String) -> ReadError {
        let at = e.span().unwrap_or_else(|| self.span.clone());
        ReadError {
            key: key_at(&self.keys, &at),
            span: at,
            message,
        }
    }

    /// `e` as a problem of this rule, with serde's message.
    fn plain_error(&self, e: &toml::de::Error) -> ReadError {
        self.error(e, format!("{}: {}", self.who, e.message()))
    }
}

/// A rule table split in three: the keys of [`RuleCommon`], `kind`, and the rest (the
/// kind's parameters, or keys nobody takes).
struct Parts<'i> {
    common: DeTable<'i>,
    kind: Option<Spanned<DeValue<'i>>>,
    params: DeTable<'i>,
}

/// Splits rule table number `index` (0-based) of its file, written at `span`.
fn split(index: usize, span: Range<usize>, table: DeTable<'_>) -> (RuleTable, Parts<'_>) {
    let who = match table.get("name").and_then(|n| n.get_ref().as_str()) {
        Some(name) => format!("rule `{name}`"),
        None => format!("rule #{}", index + 1),
    };
    let keys = table
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), k.span(), v.span()))
        .collect();
    let common_keys = field_names::<RuleCommon>();
    let mut parts = Parts {
        common: DeTable::new(),
        kind: None,
        params: DeTable::new(),
    };
    for (key, value) in table {
        if key.get_ref() == "kind" {
            parts.kind = Some(value);
        } else if common_keys.contains(&key.get_ref().as_ref()) {
            parts.common.insert(key, value);
        } else {
            parts.params.insert(key, value);
        }
    }
    (RuleTable { span, who, keys }, parts)
}

/// Reads rule table number `index` (0-based) of its file.
fn read_rule(index: usize, table: Spanned<DeValue<'_>>) -> Result<RuleConfig, Vec<ReadError>> {
    let span = table.span();
    let DeValue::Table(table) = table.into_inner() else {
        return Err(vec![ReadError {
            span,
            key: "rules".to_owned(),
            message: format!("rule #{}: expected a table", index + 1),
        }]);
    };
    let (rule, parts) = split(index, span, table);
    let mut errors = Vec::new();
    let common = RuleCommon::deserialize(table_deserializer(&rule.span, parts.common))
        .map_err(|e| errors.push(rule.plain_error(&e)))
        .ok();
    let kind = parts
        .kind
        .map_or_else(
            || Err(toml::de::Error::missing_field("kind")),
            |k| RuleKind::deserialize(ValueDeserializer::from(k)),
        )
        .map_err(|e| errors.push(rule.plain_error(&e)))
        .ok();
    let params = kind.and_then(|kind| {
        RuleParams::deserialize_kind(kind, table_deserializer(&rule.span, parts.params))
            .map_err(|e| errors.push(rule.error(&e, params_message(&rule, kind, &e))))
            .ok()
    });
    match (common, params) {
        (Some(common), Some(params)) if errors.is_empty() => Ok(RuleConfig { common, params }),
        _ => Err(errors),
    }
}

/// A deserializer of `table`, whose errors without a span of their own (a missing key)
/// point at `span`.
fn table_deserializer<'i>(span: &Range<usize>, table: DeTable<'i>) -> Deserializer<'i> {
    Deserializer::from(Spanned::new(span.clone(), table))
}

/// The message of a parameter error. A key the kind does not take (the error points at
/// the key itself) may be a typo of a field every rule has, so those are named too.
fn params_message(rule: &RuleTable, kind: RuleKind, e: &toml::de::Error) -> String {
    let who = &rule.who;
    let unknown_key = rule
        .keys
        .iter()
        .any(|(_, k, _)| Some(k) == e.span().as_ref());
    if unknown_key {
        let common = field_names::<RuleCommon>().join("`, `");
        format!(
            "{who} (kind `{kind}`): {}, or a field every rule has (`{common}`)",
            e.message()
        )
    } else {
        format!("{who} (kind `{kind}`): {}", e.message())
    }
}

/// The dotted key an error at `at` is about: the key whose name or value it points into,
/// or the table as a whole.
fn key_at(keys: &Keys, at: &Range<usize>) -> String {
    keys.iter()
        .find(|(_, k, v)| k.contains(&at.start) || v.contains(&at.start))
        .map_or_else(
            || "rules".to_owned(),
            |(name, _, _)| format!("rules.{name}"),
        )
}

/// The keys the derived `Deserialize` of struct `T` reads, as serde hands them to the
/// deserializer: asked of the derive itself, so no list is kept by hand.
pub(super) fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let fields = Cell::new(&[][..]);
    // The probe always fails: it only wants to see the field list go by.
    let _ = T::deserialize(FieldProbe(&fields));
    fields.get()
}

/// A deserializer that records the field names of the struct asked of it.
struct FieldProbe<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(fields);
        Err(Self::Error::custom("fields recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}
