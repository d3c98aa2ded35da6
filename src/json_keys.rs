//! JSON text read strictly: an object may not name a key twice.
//!
//! serde_json keeps the last of duplicate keys without a word, so `"epochs": 1, "epochs": 2`
//! trained 2 epochs, and RFC 8259 leaves what duplicates mean to each reader. A client that
//! sends a key twice meant one of them; which one is a guess lrlab does not make.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::validation::join;

/// The path (`optimizer.momentum`, `schedule.phases[1].steps`) of the first key that an
/// object of `bytes` names twice, if any. A syntax error is returned as such: the caller
/// reports it the way it reports any text that is not JSON.
pub fn first_duplicate_key(bytes: &[u8]) -> Result<Option<String>, serde_json::Error> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(found)
}

/// Visits every value, building nothing but the set of keys of the object at hand.
struct Walk<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let found = self.found;
        let mut index = 0usize;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{index}]", self.path),
                found: &mut *found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let found = self.found;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if !seen.insert(key) && found.is_none() {
                *found = Some(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::first_duplicate_key;

    fn dup(text: &str) -> Option<String> {
        first_duplicate_key(text.as_bytes()).expect("valid JSON")
    }

    #[test]
    fn a_key_named_twice_is_found_with_its_path() {
        assert_eq!(
            dup(r#"{"epochs": 1, "epochs": 2}"#).as_deref(),
            Some("epochs")
        );
        assert_eq!(
            dup(r#"{"optimizer": {"momentum": 0.9, "momentum": 0}}"#).as_deref(),
            Some("optimizer.momentum")
        );
        assert_eq!(
            dup(r#"{"schedule": {"phases": [{"steps": 1}, {"steps": 2, "steps": 3}]}}"#).as_deref(),
            Some("schedule.phases[1].steps")
        );
        // The same key written with an escape is the same key.
        assert_eq!(dup(r#"{"lr": 1, "\u006cr": 2}"#).as_deref(), Some("lr"));
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        assert_eq!(
            dup(r#"{"a": {"lr": 1}, "b": {"lr": 1}, "c": [{"lr": 1}, {"lr": 2}]}"#),
            None
        );
        assert_eq!(dup(r#"[1, "two", null, true, 2.5, -3, {}]"#), None);
    }

    #[test]
    fn text_that_is_not_json_is_a_syntax_error() {
        assert!(first_duplicate_key(br#"{"epochs": 1,"#).is_err());
        assert!(first_duplicate_key(br#"{"epochs": 1} trailing"#).is_err());
    }
}
