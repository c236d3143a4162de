//! `vmm --timeline FILE.svg`: the run drawn as OSTEP's figure 6.3. The SVG must render with a
//! real renderer (rsvg-convert), and at times taken from the same run's `--trace`, the right
//! lane must have the right colour: a spinner's lane is "has the CPU" while it runs, and the
//! kernel lane marks the timer's preemption of it.

mod common;
use common::lde::*;

use serde_json::Value;

const USER: [u8; 3] = [0x2e, 0x9e, 0x44];
const PREEMPT: [u8; 3] = [0xf0, 0x8c, 0x00];
const TIMER: [u8; 3] = [0xf2, 0xc1, 0x2e];

/// A number attribute of the SVG's root element.
fn attr(svg: &str, name: &str) -> f64 {
    let key = format!("{name}=\"");
    let at = svg.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    svg[at..].split('"').next().unwrap().parse().unwrap()
}

/// The picture as rsvg-convert draws it, 4 times wider than the SVG's own size: a 10 ms time
/// slice of a 4 s run is 3.4 units wide, too narrow to sample its middle safely at 1:1 (only
/// the first slice was wider than 6 units, and on a loaded machine none was).
struct Png {
    buf: Vec<u8>,
    width: usize,
    channels: usize,
}

const ZOOM_X: f64 = 4.0;

impl Png {
    fn render(svg: &std::path::Path, png: &std::path::Path) -> Png {
        let out = std::process::Command::new("rsvg-convert")
            .args(["--x-zoom", &ZOOM_X.to_string()])
            .arg(svg)
            .arg("-o")
            .arg(png)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rsvg-convert: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        Png {
            buf,
            width: info.width as usize,
            channels: info.color_type.samples(),
        }
    }

    /// The colour at (x, y) in the SVG's units.
    fn pixel(&self, x: f64, y: f64) -> [u8; 3] {
        let (x, y) = ((x * ZOOM_X) as usize, y as usize);
        let i = (y * self.width + x) * self.channels;
        [self.buf[i], self.buf[i + 1], self.buf[i + 2]]
    }
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
    let png = Png::render(&svg_path, &png_path);
    let pixel = |x: f64, y: f64| png.pixel(x, y);
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
    // Switch marks are 1 unit wide (4 pixels drawn) along the top of the kernel lane: its
    // middle.
    assert_eq!(pixel(lonely, kernel_lane + 3.0), PREEMPT);
}

/// `--timeline-window` draws a part of the run in detail: 30 ms of two programs that spin
/// forever, where each time slice ends in a timer interrupt (yellow, on the kernel lane) that
/// preempts one spinner for the other.
#[test]
fn a_window_of_the_run_shows_the_timer_interrupts_that_preempt() {
    require_tool(
        "rsvg-convert",
        "rsvg-convert is needed: apt-get install librsvg2-bin",
    );
    let dir = common::scratch_dir("timeline_window");
    let (svg_path, json_path, png_path) = (
        dir.join("spin.svg"),
        dir.join("spin.json"),
        dir.join("spin.png"),
    );
    let spin2 = dir.join("spinforever2");
    std::fs::copy(prog("spinforever"), &spin2).unwrap();
    let run = run_vmm_lde([
        "--user".to_string(),
        user("spinforever", ""),
        "--user".to_string(),
        spin2.display().to_string(),
        "--timeout".to_string(),
        "3".to_string(),
        "--timeline".to_string(),
        svg_path.display().to_string(),
        "--timeline-window".to_string(),
        "1000ms..1030ms".to_string(),
        "--trace".to_string(),
        json_path.display().to_string(),
    ]);
    assert_eq!(run.status, Some(124), "{}", run.dump());
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG");
    let png = Png::render(&svg_path, &png_path);
    let (t0, t1) = (attr(&svg, "data-t0-ns"), attr(&svg, "data-t1-ns"));
    assert_eq!(t1 - t0, 30e6, "the window is 30 ms wide");
    let (px, pw) = (attr(&svg, "data-plot-x"), attr(&svg, "data-plot-width"));
    let x_of = |ts_us: f64| px + (ts_us * 1000.0 - t0) / (t1 - t0) * pw;
    let kernel_lane = attr(&svg, "data-lane-y-0");
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let evs = trace["traceEvents"].as_array().unwrap();
    let kernel = |e: &&Value| e["pid"] == 0 && e["tid"] == 0;
    let mut begin = None;
    let mut checked = 0;
    for e in evs.iter().filter(kernel).filter(|e| e["name"] == "timer") {
        let ts = e["ts"].as_f64().unwrap();
        match e["ph"].as_str() {
            Some("B") => begin = Some(ts),
            Some("E") => {
                let (a, b) = (x_of(begin.take().unwrap()), x_of(ts));
                // Inside the window, and wide enough to sample its middle.
                if a > px && b < px + pw && (b - a) * ZOOM_X > 3.0 {
                    assert_eq!(
                        png.pixel((a + b) / 2.0, kernel_lane + 10.0),
                        TIMER,
                        "at {a}..{b}"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    let preempts = evs
        .iter()
        .filter(kernel)
        .filter(|e| e["name"] == "switch (preempt)")
        .map(|e| x_of(e["ts"].as_f64().unwrap()))
        .filter(|x| *x > px && *x < px + pw)
        .count();
    assert!(preempts > 0, "no preemption in the window");
    assert!(
        checked > 0,
        "no timer interrupt wide enough to check in the window"
    );
}
