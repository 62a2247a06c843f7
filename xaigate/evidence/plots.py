"""Small plots drawn with Pillow: deletion/insertion curves and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINE_COLOURS = ((178, 24, 43), (120, 120, 120), (33, 102, 172), (27, 120, 55))
INK = (30, 30, 30)
GRID = (220, 220, 220)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def curve_plot(
    curves: dict[str, Sequence[float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    size: tuple[int, int] = (480, 320),
) -> np.ndarray:
    """Line plot of each named curve over evenly spaced x in [0, 1], y in [0, 1]; RGB uint8."""
    width, height = size
    left, right, top, bottom = 56, 16, 28, 64
    picture = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    font = _font()
    x0, x1, y0, y1 = left, width - right, height - bottom, top

    def point(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, 0.0), 1.0)
        return x0 + x * (x1 - x0), y0 - y * (y0 - y1)

    for tick in np.linspace(0.0, 1.0, 6):
        draw.line([point(0, tick), point(1, tick)], fill=GRID)
        draw.text((x0 - 30, point(0, tick)[1] - 6), f"{tick:.1f}", fill=INK, font=font)
        draw.text((point(tick, 0)[0] - 8, y0 + 4), f"{tick:.1f}", fill=INK, font=font)
    draw.rectangle([x0, y1, x1, y0], outline=INK)
    draw.text((left, 8), title, fill=INK, font=font)
    draw.text(((x0 + x1) / 2 - 60, y0 + 18), x_label, fill=INK, font=font)
    draw.text((4, top - 20), y_label, fill=INK, font=font)
    for index, (name, values) in enumerate(curves.items()):
        values = np.asarray(values, dtype=np.float64)
        colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        xs = np.linspace(0.0, 1.0, len(values)) if len(values) > 1 else np.zeros(1)
        draw.line([point(x, y) for x, y in zip(xs, values, strict=True)], fill=colour, width=2)
        legend_y = y0 + 34 + 12 * (index // 2)
        legend_x = left + (index % 2) * 210
        draw.line([(legend_x, legend_y + 6), (legend_x + 20, legend_y + 6)], fill=colour, width=2)
        draw.text((legend_x + 26, legend_y), name, fill=INK, font=font)
    return np.asarray(picture)


def confusion_matrix(labels: Sequence[int], predicted: Sequence[int], classes: int) -> np.ndarray:
    """(classes, classes) counts: row the true class, column the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def confusion_plot(matrix: np.ndarray, classes: Sequence[str], *, title: str) -> np.ndarray:
    """The matrix as shaded cells with their counts; rows true, columns predicted; RGB uint8."""
    count = len(classes)
    cell, left, top = 64, 110, 52
    width, height = left + count * cell + 16, top + count * cell + 40
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    font = _font()
    draw.text((8, 8), title, fill=INK, font=font)
    draw.text((left, top - 16), "predicted ->", fill=INK, font=font)
    peak = max(int(matrix.max()), 1)
    for row in range(count):
        draw.text((8, top + row * cell + cell // 2 - 6), classes[row][:16], fill=INK, font=font)
        for column in range(count):
            share = matrix[row, column] / peak
            shade = tuple(int(255 - share * (255 - c)) for c in (33, 102, 172))
            box = [
                left + column * cell,
                top + row * cell,
                left + (column + 1) * cell,
                top + (row + 1) * cell,
            ]
            draw.rectangle(box, fill=shade, outline=INK)
            text_colour = "white" if share > 0.5 else INK
            draw.text(
                (box[0] + 8, box[1] + cell // 2 - 6),
                str(int(matrix[row, column])),
                fill=text_colour,
                font=font,
            )
    for column in range(count):
        draw.text(
            (left + column * cell + 4, top + count * cell + 6),
            classes[column][:10],
            fill=INK,
            font=font,
        )
    return np.asarray(picture)
