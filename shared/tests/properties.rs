//! Property tests of the protocol's parsers: whatever arrives, parsing answers Ok or Err and never
//! panics; a config that validates survives a JSON round trip unchanged; validation accepts exactly
//! the values inside the documented bounds.

use proptest::prelude::*;
use shared::{limits, ClientMessage, ServerMessage, TrainConfig};

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("dataset".to_string()),
                    Just("epochs".to_string()),
                    Just("lr".to_string()),
                    Just("type".to_string()),
                    Just("config".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_json_parses_or_fails_cleanly(value in json_value()) {
        let text = value.to_string();
        let _ = serde_json::from_str::<TrainConfig>(&text).map(|c| c.validate());
        let _ = serde_json::from_str::<ClientMessage>(&text);
        let _ = serde_json::from_str::<ServerMessage>(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<TrainConfig>(&bytes);
        let _ = serde_json::from_slice::<ClientMessage>(&bytes);
    }

    #[test]
    fn validation_follows_the_documented_bounds(
        epochs in 0u32..1200,
        batch_size in 0u32..5000,
        lr in -1.0f64..12.0,
        momentum in -0.5f64..1.5,
        input_size in 0u32..300,
        seed in any::<u64>(),
    ) {
        let config = TrainConfig { epochs, batch_size, lr, momentum, input_size, seed, ..TrainConfig::for_dataset("d") };
        let inside = (1..=limits::MAX_EPOCHS).contains(&epochs)
            && (1..=limits::MAX_BATCH_SIZE).contains(&batch_size)
            && lr > 0.0 && lr <= limits::MAX_LR
            && (0.0..1.0).contains(&momentum)
            && (limits::MIN_INPUT_SIZE..=limits::MAX_INPUT_SIZE).contains(&input_size);
        prop_assert_eq!(config.validate().is_ok(), inside);
        if inside {
            let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
            prop_assert_eq!(back, config);
        }
    }

    #[test]
    fn names_with_path_parts_are_always_refused(prefix in "[a-z]{0,5}", sep in prop_oneof![Just("/"), Just("\\")], rest in "[a-z.]{0,5}") {
        let config = TrainConfig::for_dataset(format!("{prefix}{sep}{rest}"));
        prop_assert_eq!(config.validate().unwrap_err().field, "dataset");
    }
}
