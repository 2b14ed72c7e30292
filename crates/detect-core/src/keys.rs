//! Interning of (service, operation) pairs into dense ids, so that detectors keep their per-key state
//! in vectors and hash each span's strings once. The number of keys is capped (`max_keys`): a service
//! that puts ids into span names must not exhaust memory.

use hashbrown::HashMap;

/// A dense id of one (service, operation) pair.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct KeyId(pub u32);

impl KeyId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug)]
pub struct KeyInterner {
    by_service: HashMap<Box<str>, HashMap<Box<str>, KeyId>>,
    names: Vec<(Box<str>, Box<str>)>,
    max_keys: usize,
}

impl KeyInterner {
    pub fn new(max_keys: usize) -> Self {
        KeyInterner {
            by_service: HashMap::new(),
            names: Vec::new(),
            max_keys,
        }
    }

    /// The id of the pair, made on first sight; `None` once the cap is reached.
    pub fn intern(&mut self, service: &str, operation: &str) -> Option<KeyId> {
        if let Some(id) = self
            .by_service
            .get(service)
            .and_then(|ops| ops.get(operation))
        {
            return Some(*id);
        }
        if self.names.len() >= self.max_keys {
            return None;
        }
        let id = KeyId(self.names.len() as u32);
        self.names.push((service.into(), operation.into()));
        if !self.by_service.contains_key(service) {
            self.by_service.insert(service.into(), HashMap::new());
        }
        if let Some(ops) = self.by_service.get_mut(service) {
            ops.insert(operation.into(), id);
        }
        Some(id)
    }

    pub fn service(&self, id: KeyId) -> &str {
        &self.names[id.index()].0
    }

    pub fn operation(&self, id: KeyId) -> &str {
        &self.names[id.index()].1
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pair_same_id_and_the_cap_holds() {
        let mut keys = KeyInterner::new(2);
        let a = keys.intern("cart", "GET /cart").unwrap();
        let b = keys.intern("cart", "POST /cart").unwrap();
        assert_ne!(a, b);
        assert_eq!(keys.intern("cart", "GET /cart"), Some(a));
        assert_eq!(keys.intern("users", "login"), None);
        assert_eq!((keys.service(b), keys.operation(b)), ("cart", "POST /cart"));
    }
}
