//! `LabelPolicy::Hash`, in a process of its own: the policy is a global switch.
#![cfg(feature = "enabled")]

heapscope::install!();

use heapscope::retained::{self, LabelPolicy};
use heapscope::{Owner, Retained, Snapshot};
use std::hint::black_box;

/// FNV-1a, 64 bits, written out from its definition.
fn fnv1a64(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[test]
fn hash_policy_hides_the_label_text() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);

    let parent = Owner::named("hash_parent");
    let secret = "secret-customer-file.txt";
    retained::set_label_policy(LabelPolicy::Hash);
    let item = Retained::build(parent, secret, || black_box(vec![0u8; 4321]));
    retained::set_label_policy(LabelPolicy::Text);

    let want = format!("fnv1a64:{:016x}", fnv1a64(secret));
    assert_eq!(item.label(), want);
    assert_eq!(item.live_bytes(), 4321);
    assert!(!item.owner().name().contains("secret"));

    let top = retained::top(10);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].label, want);
    assert_eq!(top[0].live_bytes, 4321);
    assert!(!format!("{top:?}").contains("secret"));
    let json = serde_json::to_string(&top).unwrap();
    assert!(!json.contains("secret"), "{json}");
    let snap = serde_json::to_string(&Snapshot::capture()).unwrap();
    assert!(!snap.contains("secret"), "{snap}");

    // Items built after switching back keep their text; the hashed one keeps its hash.
    let plain = Retained::build(parent, "plain label", || 1u8);
    assert_eq!(plain.label(), "plain label");
    assert_eq!(item.label(), want);
    let labels: Vec<String> = retained::top(10).into_iter().map(|i| i.label).collect();
    assert_eq!(labels, vec![want, "plain label".to_owned()]);
}
