//! A Grad-CAM map drawn over the image it explains: one cell per position of the explained layer's
//! output, coloured from blue (no contribution) to red (the strongest), more opaque where stronger.

use leptos::prelude::*;
use shared::Explanation;

/// The map as an SVG that fills its positioned parent (over the image) and stretches with it, as the
/// image was stretched to the model's square input. `class_name` names the explained class.
pub fn heat_map(explanation: &Explanation, class_name: &str) -> impl IntoView {
    let Explanation { layer, width, height, cam, .. } = explanation;
    let (width, height) = (*width, *height);
    let cells = cam
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let (x, y) = (i as u32 % width.max(1), i as u32 / width.max(1));
            let (fill, opacity) = ramp(value);
            view! {
                <rect class="cam-cell" x=x y=y width="1" height="1" fill=fill fill-opacity=opacity/>
            }
        })
        .collect_view();
    let label = format!("Grad-CAM heat map at {layer}: where the image counted most for {class_name} (red)");
    view! {
        <svg
            class="heatmap"
            role="img"
            aria-label=label
            viewBox=format!("0 0 {width} {height}")
            preserveAspectRatio="none"
            data-width=width
            data-height=height
            data-layer=layer.clone()
        >
            {cells}
        </svg>
    }
}

/// Colour and opacity of a map value in `[0, 1]`: hue from blue (240°) to red (0°).
fn ramp(value: f32) -> (String, String) {
    let value = value.clamp(0.0, 1.0);
    (format!("hsl({:.0}, 100%, 50%)", 240.0 * (1.0 - value)), format!("{:.2}", 0.15 + 0.45 * value))
}
