import Foundation

/// A small SVG line chart of `ModelComparison.Drift.perBlock`: the relative output error of model B against
/// model A after each block, on a logarithmic axis (errors span decades from the first block to the last).
public enum DriftPlot {
    /// The SVG document: one point per block, the final normed error as a dashed line, axes with decade ticks.
    public static func svg(perBlock errors: [Double], final: Double, title: String) -> String {
        let (width, height, left, right, top, bottom) = (640.0, 360.0, 64.0, 16.0, 36.0, 44.0)
        let positive = (errors + [final]).filter { $0 > 0 }
        let low = floor(log10(positive.min() ?? 1e-4)), high = max(low + 1, ceil(log10(positive.max() ?? 1)))
        func x(_ i: Int) -> Double { left + (width - left - right) * (errors.count > 1 ? Double(i) / Double(errors.count - 1) : 0.5) }
        func y(_ v: Double) -> Double {
            let t = (log10(max(v, pow(10, low))) - low) / (high - low)
            return top + (height - top - bottom) * (1 - t)
        }
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(Int(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>",
            "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - right)\" y2=\"\(height - bottom)\" stroke=\"black\"/>",
            "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"black\"/>",
        ]
        for decade in stride(from: low, through: high, by: 1) {
            let v = y(pow(10, decade))
            out.append("<line x1=\"\(left - 4)\" y1=\"\(v)\" x2=\"\(width - right)\" y2=\"\(v)\" stroke=\"#ddd\"/>")
            out.append("<text x=\"\(left - 8)\" y=\"\(v + 4)\" text-anchor=\"end\">1e\(Int(decade))</text>")
        }
        for i in errors.indices where errors.count <= 12 || i % max(1, errors.count / 10) == 0 || i == errors.count - 1 {
            out.append("<text x=\"\(x(i))\" y=\"\(height - bottom + 16)\" text-anchor=\"middle\">\(i)</text>")
        }
        out.append("<text x=\"\(Int(width / 2))\" y=\"\(Int(height) - 8)\" text-anchor=\"middle\">block</text>")
        out.append("<text x=\"14\" y=\"\(Int(height / 2))\" transform=\"rotate(-90 14 \(Int(height / 2)))\" text-anchor=\"middle\">‖h_B − h_A‖ / ‖h_A‖</text>")
        out.append("<line x1=\"\(left)\" y1=\"\(y(final))\" x2=\"\(width - right)\" y2=\"\(y(final))\" stroke=\"#c44\" stroke-dasharray=\"6 4\"/>")
        out.append("<text x=\"\(width - right)\" y=\"\(y(final) - 6)\" text-anchor=\"end\" fill=\"#c44\">final norm \(String(format: "%.3g", final))</text>")
        if !errors.isEmpty {
            let points = errors.indices.map { "\(x($0)),\(y(errors[$0]))" }.joined(separator: " ")
            out.append("<polyline points=\"\(points)\" fill=\"none\" stroke=\"#2a6\" stroke-width=\"2\"/>")
            for i in errors.indices { out.append("<circle cx=\"\(x(i))\" cy=\"\(y(errors[i]))\" r=\"3\" fill=\"#2a6\"/>") }
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// `text` with the XML special characters escaped.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
