//! The training form's setting controls, each built from its entry in [`shared::FIELDS`]: the label,
//! help sentence, range and unit come from there, so the form says what the validation messages and the
//! docs say. A setting is shown only while it applies to what the form describes (the step size only
//! with the step schedule, GPU options only on a GPU server).

use leptos::prelude::*;
use shared::fields::{Bound, Kind, Section};
use shared::{ConfigError, Field, Surroundings, TrainConfig, FIELDS};

use crate::form::{problem_for, TrainForm};

/// The form checked against the shared rules.
pub type Checked = Memo<Result<TrainConfig, Vec<ConfigError>>>;

/// What every setting control reads and writes.
#[derive(Clone, Copy)]
pub struct FormSignals {
    /// The form as typed.
    pub form: RwSignal<TrainForm>,
    /// The form checked against the shared rules.
    pub checked: Checked,
    /// Bumped when something other than typing (a preset, "Use these settings") rewrote the boxes.
    pub rewritten: RwSignal<u32>,
    /// What the server and the chosen dataset are, which some settings depend on.
    pub around: Memo<Surroundings>,
}

impl FormSignals {
    /// True while `field` applies to what the form describes.
    pub fn applies(&self, field: &'static Field) -> bool {
        let around = self.around.get();
        self.form.with(|form| form.applies(field, &around))
    }

    fn problem(&self, field: &'static Field) -> Option<String> {
        self.checked.with(|c| problem_for(c, field.name).map(str::to_string))
    }
}

/// The id of a setting's control: its JSON name with dashes (`batch_size` → `batch-size`).
pub fn control_id(name: &str) -> String {
    name.replace('_', "-")
}

/// Every field of `section`, in form order.
pub fn fields_of(section: Section) -> impl Iterator<Item = &'static Field> {
    FIELDS.iter().filter(move |field| field.section == section)
}

/// A setting's control with its label, help sentence and message, while the setting applies. Names
/// (dataset, weights) have controls of their own in the training panel and render nothing here.
#[component]
pub fn SettingField(field: &'static Field, signals: FormSignals) -> impl IntoView {
    let control = move || match field.kind {
        Kind::Whole { .. } | Kind::Decimal { .. } => view! { <NumberInput field=field signals=signals/> }.into_any(),
        Kind::Flag => view! { <FlagInput field=field signals=signals/> }.into_any(),
        Kind::Choice(_) => view! { <ChoiceSelect field=field signals=signals/> }.into_any(),
        Kind::Name => ().into_any(),
    };
    view! { <Show when=move || signals.applies(field)>{control}</Show> }
}

/// A fieldset of the Advanced part with the settings of `section` that apply; hidden when none does.
#[component]
pub fn SettingsSection(section: Section, signals: FormSignals) -> impl IntoView {
    let any_applies = move || fields_of(section).any(|field| signals.applies(field));
    view! {
        <Show when=any_applies>
            <fieldset class="field-grid" data-section=section.title()>
                <legend>{section.title()}</legend>
                {fields_of(section).map(|field| view! { <SettingField field=field signals=signals/> }).collect_view()}
            </fieldset>
        </Show>
    }
}

/// The `min`, `max` and `step` attributes of a number box, from the field's range and kind.
fn number_attributes(field: &Field) -> (Option<String>, Option<String>, &'static str) {
    let end = |bound: Bound| match bound {
        Bound::Inclusive(x) | Bound::Exclusive(x) => Some(x.to_string()),
        Bound::Open => None,
    };
    let (min, max) = field.range.map_or((None, None), |range| (end(range.min), end(range.max)));
    let step = if matches!(field.kind, Kind::Whole { .. }) { "1" } else { "any" };
    (min, max, step)
}

/// What an empty box means, for its placeholder.
fn empty_meaning(field: &Field) -> Option<&'static str> {
    match field.kind {
        Kind::Whole { empty } | Kind::Decimal { empty } => empty,
        _ => None,
    }
}

/// A number box. It is left uncontrolled while typing: writing the value back while someone types "0."
/// would rewrite it under the cursor, so only a rewrite of the whole form writes into it. `change` is
/// heard as well as `input` because clearing a box (by a script or autofill) fires only `change`.
#[component]
fn NumberInput(field: &'static Field, signals: FormSignals) -> impl IntoView {
    let FormSignals { form, checked, rewritten, .. } = signals;
    let id = control_id(field.name);
    let (min, max, step) = number_attributes(field);
    let current = move || form.with_untracked(|f| f.text(field.name).to_string());
    let read = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        if form.with_untracked(|f| f.text(field.name) != value) {
            form.update(|f| f.set(field.name, value));
        }
    };
    view! {
        <div class="field" class:invalid=move || signals.problem(field).is_some()>
            <label for=id.clone()>{field.label_with_unit()}</label>
            <input
                id=id.clone()
                name=field.name
                type="number"
                min=min
                max=max
                step=step
                value=current()
                prop:value=move || {
                    rewritten.track();
                    current()
                }
                placeholder=empty_meaning(field)
                aria-describedby=format!("{id}-help {id}-error")
                aria-invalid=move || signals.problem(field).is_some().to_string()
                on:input=read
                on:change=read
            />
            <p class="field-help" id=format!("{id}-help")>{field.help}</p>
            <FieldError checked=checked field=field.name id=id/>
        </div>
    }
}

/// A checkbox for an on/off setting.
#[component]
fn FlagInput(field: &'static Field, signals: FormSignals) -> impl IntoView {
    let FormSignals { form, checked, .. } = signals;
    let id = control_id(field.name);
    view! {
        <div class="field check">
            <input
                id=id.clone()
                name=field.name
                type="checkbox"
                aria-describedby=format!("{id}-help")
                prop:checked=move || form.with(|f| f.flag(field.name))
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    form.update(|f| f.set(field.name, on.to_string()));
                }
            />
            <label for=id.clone()>{field.label}</label>
            <p class="field-help" id=format!("{id}-help")>{field.help}</p>
            <FieldError checked=checked field=field.name id=id/>
        </div>
    }
}

/// A menu of a setting's choices, each shown by its label.
#[component]
fn ChoiceSelect(field: &'static Field, signals: FormSignals) -> impl IntoView {
    let FormSignals { form, checked, .. } = signals;
    let id = control_id(field.name);
    let options = match field.kind {
        Kind::Choice(options) => options(),
        _ => Vec::new(),
    };
    view! {
        <div class="field" class:invalid=move || signals.problem(field).is_some()>
            <label for=id.clone()>{field.label}</label>
            <select
                id=id.clone()
                name=field.name
                aria-describedby=format!("{id}-help {id}-error")
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    form.update(|f| f.set(field.name, value));
                }
            >
                {options.into_iter().map(|(name, label)| view! {
                    <option value=name prop:selected=move || form.with(|f| f.text(field.name) == name)>
                        {label}
                    </option>
                }).collect_view()}
            </select>
            <p class="field-help" id=format!("{id}-help")>{field.help}</p>
            <FieldError checked=checked field=field.name id=id/>
        </div>
    }
}

/// The message under a form field, while the field breaks a rule.
#[component]
pub fn FieldError(checked: Checked, field: &'static str, id: String) -> impl IntoView {
    move || {
        checked.with(|c| problem_for(c, field).map(str::to_string)).map(|message| {
            view! { <p class="field-error" id=format!("{id}-error")>{message}</p> }
        })
    }
}

/// Beside a disabled Start: why it is disabled, each setting at fault a link that opens the Advanced
/// part when the setting is in it and puts the cursor in the setting's control.
#[component]
pub fn StartBlockers(checked: Checked, connected: RwSignal<bool>) -> impl IntoView {
    let faults = Memo::new(move |_| {
        checked.with(|c| c.as_ref().err().map(|problems| problems.iter().map(|p| p.field).collect::<Vec<_>>()))
    });
    view! {
        <p id="start-why" class="start-why" role="status">
            {move || match faults.get() {
                Some(fields) => {
                    let links = fields.into_iter().enumerate().map(|(index, name)| {
                        let separator = (index > 0).then_some(", ");
                        view! { {separator}<FieldLink name=name/> }
                    }).collect_view();
                    view! { "Start needs a change to: " {links} }.into_any()
                }
                None if !connected.get() => "Start waits for the connection to the server.".into_any(),
                None => ().into_any(),
            }}
        </p>
    }
}

/// A link to the setting named `name`: a click opens the Advanced part if it holds the setting and
/// focuses its control.
#[component]
fn FieldLink(name: &'static str) -> impl IntoView {
    let field = shared::fields::field(name);
    let label = shared::fields::label_of(name).to_string();
    let id = control_id(name);
    let target = id.clone();
    let go = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        focus_setting(field.is_some_and(|f| f.section.is_advanced()), &target);
    };
    view! { <a class="field-link" href=format!("#{id}") data-field=name on:click=go>{label}</a> }
}

/// Opens the Advanced part when `advanced`, then focuses the element with `id`.
fn focus_setting(advanced: bool, id: &str) {
    let document = document();
    if advanced {
        if let Some(details) = document.get_element_by_id("advanced") {
            let _ = details.set_attribute("open", "");
        }
    }
    if let Some(control) = document.get_element_by_id(id) {
        use wasm_bindgen::JsCast;
        if let Ok(control) = control.dyn_into::<web_sys::HtmlElement>() {
            let _ = control.focus();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_are_the_names_with_dashes() {
        assert_eq!(control_id("batch_size"), "batch-size");
        assert_eq!(control_id("early_stopping_patience"), "early-stopping-patience");
        assert_eq!(control_id("lr"), "lr");
    }

    #[test]
    fn number_boxes_take_their_bounds_from_the_field_table() {
        let field = |name| shared::fields::field(name).unwrap();
        assert_eq!(number_attributes(field("batch_size")), (Some("1".into()), Some("4096".into()), "1"));
        assert_eq!(number_attributes(field("lr")), (Some("0".into()), Some("10".into()), "any"));
        assert_eq!(number_attributes(field("seed")), (None, None, "1"));
        assert_eq!(empty_meaning(field("grad_clip_norm")), Some("no clipping"));
    }

    #[test]
    fn every_section_but_the_basic_one_has_settings_in_the_advanced_part() {
        for section in Section::ALL {
            assert!(fields_of(section).count() > 0, "{section:?}");
        }
        assert!(fields_of(Section::Basic).all(|f| !f.section.is_advanced()));
    }
}
