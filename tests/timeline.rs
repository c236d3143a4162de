//! `vmm --timeline FILE.svg`: the run drawn as OSTEP's figure 6.3. The SVG must render with a
//! real renderer (rsvg-convert), and at times taken from the same run's `--trace`, the right
//! lane must have the right colour: a spinner's lane is "has the CPU" while it runs, and the
//! kernel lane marks the timer's preemption of it.

mod common;
use common::lde::*;

use serde_json::Value;

const USER: [u8; 3] = [0x2e, 0x9e, 0x44];
const PREEMPT: [u8; 3] = [0xf0, 0x8c, 0x00];

/// A number attribute of the SVG's root element.
fn attr(svg: &str, name: &str) -> f64 {
    let key = format!("{name}=\"");
    let at = svg.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    svg[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn the_timeline_renders_and_shows_a_spinner_running_and_preempted() {
    require_tool(
        "rsvg-convert",
        "rsvg-convert is needed: apt-get install librsvg2-bin",
    );
    let dir = common::scratch_dir("timeline");
    let (svg_path, json_path, png_path) = (
        dir.join("demo.svg"),
        dir.join("demo.json"),
        dir.join("demo.png"),
    );
    let run = run_vmm_lde([
        "--timeline",
        svg_path.to_str().unwrap(),
        "--trace",
        json_path.to_str().unwrap(),
    ]);
    run.assert_status(0);
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG");
    // Drawn 4 times wider than the SVG's own size: a 10 ms time slice of a 4 s run is 3.4 units
    // wide, too narrow to sample its middle safely at 1:1 (only the first slice was wider than
    // 6 units, and on a loaded machine none was).
    const ZOOM_X: f64 = 4.0;
    let out = std::process::Command::new("rsvg-convert")
        .args(["--x-zoom", &ZOOM_X.to_string()])
        .arg(&svg_path)
        .arg("-o")
        .arg(&png_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsvg-convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    // The colour at (x, y) in the SVG's units.
    let pixel = |x: f64, y: f64| -> [u8; 3] {
        let (x, y) = ((x * ZOOM_X) as usize, y as usize);
        let i = (y * info.width as usize + x) * channels;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let (t0, t1) = (attr(&svg, "data-t0-ns"), attr(&svg, "data-t1-ns"));
    let (px, pw) = (attr(&svg, "data-plot-x"), attr(&svg, "data-plot-width"));
    let x_of = |ts_us: f64| px + (ts_us * 1000.0 - t0) / (t1 - t0) * pw;

    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let evs = trace["traceEvents"].as_array().unwrap();
    let spin = evs
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"].as_str().unwrap().ends_with(" spin"))
        .and_then(|e| e["pid"].as_u64())
        .expect("a spin track");
    let lane = attr(&svg, &format!("data-lane-y-{spin}"));
    let kernel_lane = attr(&svg, "data-lane-y-0");
    // The spinner's "running" slices: the middle of each wide one is drawn as "has the CPU"
    // (its band's top edge, above any system call drawn inside it).
    let ts = |e: &Value| e["ts"].as_f64().unwrap();
    let mut begin = None;
    let mut checked = 0;
    for e in evs
        .iter()
        .filter(|e| e["pid"] == spin && e["name"] == "running")
    {
        match e["ph"].as_str() {
            Some("B") => begin = Some(ts(e)),
            Some("E") => {
                let (a, b) = (x_of(begin.take().unwrap()), x_of(ts(e)));
                if (b - a) * ZOOM_X > 6.0 {
                    assert_eq!(pixel((a + b) / 2.0, lane + 2.0), USER, "at x {a}..{b}");
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(checked > 0, "no spin slice wide enough to check");
    // Its preemptions: a timer mark on the kernel lane, where no other switch is near.
    let switches: Vec<f64> = evs
        .iter()
        .filter(|e| e["cat"] == "sched" && e["ph"] == "i")
        .map(|e| x_of(ts(e)))
        .collect();
    let lonely = evs
        .iter()
        .filter(|e| {
            e["cat"] == "sched" && e["args"]["from"] == spin && e["args"]["why"] == "preempt"
        })
        .map(|e| x_of(ts(e)))
        .find(|x| switches.iter().filter(|s| (*s - x).abs() < 4.0).count() == 1)
        .expect("a preemption of spin away from other switches");
    // The middle of the pixel column the mark starts in, as it was sampled at 1:1.
    assert_eq!(pixel(lonely.floor() + 0.5, kernel_lane + 10.0), PREEMPT);
}
