//! Kong's deterministic entity ids (kong-compat.md §1.2, `declarative_config.lua`
//! `generate_uuid`): `ns = v5(fd02801f-0957-4a15-a55a-c8d9606f30b5, <entity table name>)`,
//! `id = v5(ns, key)`.

use uuid::Uuid;

const ENTITIES_NS: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

/// Kong's workspace placeholder in cache keys of declarative entities.
pub const WS: &str = "*";

pub fn entity_id(entity: &str, key: &str) -> String {
    let ns = Uuid::new_v5(&ENTITIES_NS, entity.as_bytes());
    Uuid::new_v5(&ns, key.as_bytes()).hyphenated().to_string()
}

/// Cache-key based id: `"<entity>:<ws>:<fields joined by ':'>"`.
pub fn cache_key_id(entity: &str, fields: &[&str]) -> String {
    let mut key = format!("{entity}:{WS}");
    for f in fields {
        key.push(':');
        key.push_str(f);
    }
    entity_id(entity, &key)
}

/// Kiln-only: Kong gives an entity without name (or other key) a *random* id; Kiln must be
/// deterministic, so it uses the entity's position: `v5(ns, "<singular>#<index>")`.
pub fn positional_id(entity: &str, singular: &str, index: usize) -> String {
    entity_id(entity, &format!("{singular}#{index}"))
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && Uuid::try_parse(s).is_ok()
}
