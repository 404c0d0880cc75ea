//! The training form kept in the browser's `localStorage`, so that a reload (or the next visit) shows
//! what was typed. Only this page's origin can read it; nothing is sent to the server.

use crate::form::TrainForm;

/// The `localStorage` key the form is kept under. The version suffix changes if the stored shape ever
/// changes incompatibly, so an old entry is ignored rather than misread.
pub const FORM_KEY: &str = "transfer-studio.form.v1";

/// The form as stored: JSON of every field as typed.
pub fn encode(form: &TrainForm) -> String {
    serde_json::to_string(form).expect("the form serialises")
}

/// A stored form, or `None` when the text is not one (then the page keeps its defaults). Fields missing
/// from the text take their defaults.
pub fn decode(text: &str) -> Option<TrainForm> {
    serde_json::from_str(text).ok()
}

/// The form saved by an earlier visit, if any.
pub fn load_form() -> Option<TrainForm> {
    decode(&local_storage()?.get_item(FORM_KEY).ok()??)
}

/// Saves `form` for the next visit. A browser that refuses storage (private mode, quota) just forgets it.
pub fn save_form(form: &TrainForm) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(FORM_KEY, &encode(form));
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_with_half_typed_numbers_kept_as_typed() {
        let mut form = TrainForm::default();
        form.set("epochs", "7");
        form.set("lr", "0.");
        form.set("schedule", "cosine");
        assert_eq!(decode(&encode(&form)), Some(form));
    }

    #[test]
    fn fields_missing_from_a_saved_form_take_their_defaults() {
        let form = decode(r#"{"epochs": "9"}"#).unwrap();
        let mut expected = TrainForm::default();
        expected.set("epochs", "9");
        assert_eq!(form, expected);
    }

    #[test]
    fn a_form_saved_with_flags_as_json_booleans_still_reads() {
        let form = decode(r#"{"nesterov": true, "random_crop": false}"#).unwrap();
        assert!(form.flag("nesterov") && !form.flag("random_crop"));
    }

    #[test]
    fn text_that_is_not_a_form_is_ignored() {
        assert_eq!(decode("not json"), None);
        assert_eq!(decode(r#"{"schedule": "sometimes"}"#), None);
    }
}
