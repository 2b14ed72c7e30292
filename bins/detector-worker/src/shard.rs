//! Sharing the work between workers by service: with `--shard K/N`, a worker handles the traces whose
//! root service hashes to `K` (FNV-1a 64 of `service.name`, scaled to `N` by its high bits), with a cursor, a lease and a
//! learned state of that shard's own. Several workers given the same shard are one active and the
//! others standing by. Every span of a service goes to one shard, so each shard's baselines are whole.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("a shard is K/N with 0 ≤ K < N, such as 0/3 (got {s:?})");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits: stable across versions and platforms (unlike the standard library's hasher).
pub fn service_hash(service: &str) -> u64 {
    service.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Shard {
    /// The shard of a service: the hash's high bits scaled to `count` (FNV's low bits are weak).
    pub fn of(service: &str, count: u32) -> u32 {
        ((u128::from(service_hash(service)) * u128::from(count)) >> 64) as u32
    }

    pub fn owns(&self, root_service: Option<&str>) -> bool {
        self.count == 1 || Shard::of(root_service.unwrap_or(""), self.count) == self.index
    }

    /// A store key of this shard: `base` itself for the single shard, so that a worker started
    /// without `--shard` keeps the keys it always had.
    pub fn key(&self, base: &str) -> String {
        if self.count == 1 {
            base.to_owned()
        } else {
            format!("{base}:{}-of-{}", self.index, self.count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_services() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for service in ["cart", "shop", "users", "search", "pay"] {
            assert_eq!(shards.iter().filter(|s| s.owns(Some(service))).count(), 1);
        }
        assert!(Shard::default().owns(None));
        assert_eq!(Shard::default().key("tempo:windows"), "tempo:windows");
        assert_eq!(shards[1].key("tempo:windows"), "tempo:windows:1-of-3");
        // The published function: operators can tell which shard owns a service.
        assert_eq!(service_hash(""), 0xcbf2_9ce4_8422_2325);
    }
}
