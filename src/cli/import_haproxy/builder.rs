//! Builds one YAML map (a section) directive by directive. Comment lines
//! of the HAProxy file wait in `pending` and are written just before the
//! next thing added, wherever in the map that lands (a new `acl:` entry, a
//! server...), so a comment stays beside the directive it described.

use super::yaml::{Item, Node};

#[derive(Debug, Default)]
pub(crate) struct Map {
    pub items: Vec<Item>,
    pub pending: Vec<String>,
}

impl Map {
    pub(crate) fn comment(&mut self, text: &str) {
        self.pending.push(text.to_string());
    }

    fn flush_into(pending: &mut Vec<String>, target: &mut Vec<Item>) {
        target.extend(pending.drain(..).map(Item::Comment));
    }

    /// A comment line written now, after any pending ones.
    pub(crate) fn note(&mut self, text: String) {
        Self::flush_into(&mut self.pending, &mut self.items);
        self.items.push(Item::Comment(text));
    }

    /// Comments still pending are written at the end.
    pub(crate) fn finish(mut self) -> Vec<Item> {
        Self::flush_into(&mut self.pending, &mut self.items);
        self.items
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.items
            .iter()
            .position(|i| matches!(i, Item::Entry { key: Some(k), .. } if k == key))
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// `key: value`; a key written again is replaced where it first stood
    /// (HAProxy: the last one wins).
    pub(crate) fn set(&mut self, key: &str, value: Node, trailing: Option<String>) {
        if let Some(i) = self.position(key) {
            self.items[i] = Item::Entry {
                key: Some(key.to_string()),
                value,
                trailing,
            };
            let mut pending = std::mem::take(&mut self.pending);
            let at = i + 1;
            for (n, c) in pending.drain(..).enumerate() {
                self.items.insert(at + n, Item::Comment(c));
            }
            return;
        }
        Self::flush_into(&mut self.pending, &mut self.items);
        self.items.push(Item::Entry {
            key: Some(key.to_string()),
            value,
            trailing,
        });
    }

    /// The block collection under `key`, made on first use.
    fn child(&mut self, key: &str, seq: bool) -> &mut Vec<Item> {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.items.push(Item::Entry {
                    key: Some(key.to_string()),
                    value: if seq {
                        Node::Seq(Vec::new())
                    } else {
                        Node::Map(Vec::new())
                    },
                    trailing: None,
                });
                self.items.len() - 1
            }
        };
        match &mut self.items[i] {
            Item::Entry {
                value: Node::Seq(v) | Node::Map(v),
                ..
            } => v,
            _ => unreachable!("`{key}` is always a block collection"),
        }
    }

    /// Makes the block map `key` (if it is not there yet) with `trailing`
    /// as its comment.
    pub(crate) fn open(&mut self, key: &str, trailing: Option<String>) {
        if !self.has(key) {
            Self::flush_into(&mut self.pending, &mut self.items);
            self.items.push(Item::Entry {
                key: Some(key.to_string()),
                value: Node::Map(Vec::new()),
                trailing,
            });
        } else if let Some(t) = trailing {
            self.note(t);
        }
    }

    /// Appends `value` to the sequence `key`.
    pub(crate) fn push(&mut self, key: &str, value: Node, trailing: Option<String>) {
        let mut pending = std::mem::take(&mut self.pending);
        let new = !self.has(key);
        if new {
            Self::flush_into(&mut pending, &mut self.items);
        }
        let list = self.child(key, true);
        Self::flush_into(&mut pending, list);
        list.push(Item::Entry {
            key: None,
            value,
            trailing,
        });
    }

    /// Sets `sub` in the map `key`; a sub-key written again is replaced.
    pub(crate) fn put(&mut self, key: &str, sub: &str, value: Node, trailing: Option<String>) {
        let mut pending = std::mem::take(&mut self.pending);
        if !self.has(key) {
            Self::flush_into(&mut pending, &mut self.items);
        }
        let map = self.child(key, false);
        if let Some(i) = map
            .iter()
            .position(|i| matches!(i, Item::Entry { key: Some(k), .. } if k == sub))
        {
            map[i] = Item::Entry {
                key: Some(sub.to_string()),
                value,
                trailing,
            };
            return;
        }
        Self::flush_into(&mut pending, map);
        map.push(Item::Entry {
            key: Some(sub.to_string()),
            value,
            trailing,
        });
    }

    /// The entry under `key` in the map `key`, for sections that add to it
    /// (an `acl` defined twice becomes a list).
    pub(crate) fn get_in(&mut self, key: &str, sub: &str) -> Option<&mut Node> {
        let i = self.position(key)?;
        let Item::Entry {
            value: Node::Map(m),
            ..
        } = &mut self.items[i]
        else {
            return None;
        };
        m.iter_mut().find_map(|i| match i {
            Item::Entry {
                key: Some(k),
                value,
                ..
            } if k == sub => Some(value),
            _ => None,
        })
    }
}
