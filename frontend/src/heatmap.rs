//! A Grad-CAM map drawn over the image it explains: one cell per position of the explained layer's
//! output, coloured from blue (no contribution) to red (the strongest), more opaque where stronger; and
//! the legend that says so, drawn with the same colours.

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
            let Shade { hue, opacity } = shade(value);
            let fill = format!("hsl({hue:.0}, 100%, 50%)");
            let opacity = format!("{opacity:.2}");
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

/// What the colours of the heat maps beside it mean, as a bar drawn with the maps' own colours. `id`
/// tells the legends of a page apart; `counted_for` says whose class the maps explain.
#[component]
pub fn HeatLegend(#[prop(into)] id: String, counted_for: &'static str) -> impl IntoView {
    let words = format!("{id}-words");
    let labelled_by = words.clone();
    view! {
        <div class="heat-legend" id=id role="group" aria-labelledby=labelled_by>
            <span class="heat-legend-end">"least"</span>
            <span class="heat-legend-bar" style=format!("background: {}", legend_gradient()) aria-hidden="true"></span>
            <span class="heat-legend-end">"most"</span>
            <p class="heat-legend-words" id=words>
                {format!("Heat map: blue where the image counted least for {counted_for}, red where it counted most.")}
            </p>
        </div>
    }
}

/// How a map value is drawn: its hue in degrees and its opacity.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shade {
    hue: f32,
    opacity: f32,
}

/// The shade of a map value in `[0, 1]`: hue from blue (240°) to red (0°), more opaque where stronger.
fn shade(value: f32) -> Shade {
    let value = value.clamp(0.0, 1.0);
    Shade { hue: 240.0 * (1.0 - value), opacity: 0.15 + 0.45 * value }
}

/// The legend's CSS gradient: the shades of 0, ¼, ½, ¾ and 1, left to right, as a map draws them.
fn legend_gradient() -> String {
    let stops: Vec<String> = (0..=4)
        .map(|step| {
            let Shade { hue, opacity } = shade(step as f32 / 4.0);
            format!("hsla({hue:.0}, 100%, 50%, {opacity:.2})")
        })
        .collect();
    format!("linear-gradient(to right, {})", stops.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_runs_from_the_faint_blue_of_no_contribution_to_the_strong_red_of_the_most() {
        assert_eq!(shade(0.0), Shade { hue: 240.0, opacity: 0.15 });
        assert_eq!(shade(1.0), Shade { hue: 0.0, opacity: 0.6 });
        assert_eq!(shade(7.0), shade(1.0), "values past the ends are drawn as the ends");
        let gradient = legend_gradient();
        assert!(gradient.starts_with("linear-gradient(to right, hsla(240, 100%, 50%, 0.15), "), "{gradient}");
        assert!(gradient.ends_with(", hsla(0, 100%, 50%, 0.60))"), "{gradient}");
        assert_eq!(gradient.matches("hsla(").count(), 5);
    }
}
