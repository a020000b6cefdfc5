"""C99 code generation: one header with the model's API, one source with the weights,
the arena and one function per step.

The code has no ``malloc``, one static arena, and only ``expf``/``tanhf`` from libm (float
mode with Sigmoid, Tanh or Softmax; the fixed-point mode uses none). Every weight is read
through an accessor macro bound to the tensor's address in its medium: ``pgm_read_*`` for
flash (``PROGMEM``) and ``eeprom_read_*`` for EEPROM on AVR, a plain load elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphrec.mcu.errors import PortError
from graphrec.mcu.fixed import FixedModel
from graphrec.mcu.memplan import ArenaPlan, StoragePlan
from graphrec.mcu.model import McuModel, Step

__all__ = ["CSource", "ConstTensor", "const_tensors", "external_layout", "generate_c"]

_C_TYPES = {"f32": "float", "i8": "int8_t", "i16": "int16_t", "i32": "int32_t", "u16": "uint16_t"}
_RD_SUFFIX = {"f32": "F32", "i8": "I8", "i16": "I16", "i32": "I32", "u16": "U16"}
_ELEM_BYTES = {"f32": 4, "i8": 1, "i16": 2, "i32": 4, "u16": 2}


@dataclass
class ConstTensor:
    """A constant array of the generated code (weight, bias, constant or lookup table)."""

    name: str
    ctype: str
    values: np.ndarray
    reads: float

    @property
    def bytes(self) -> int:
        """Storage bytes."""
        return int(self.values.size) * _ELEM_BYTES[self.ctype]


@dataclass
class CSource:
    """The generated files."""

    header: str
    source: str
    header_name: str
    source_name: str


def const_tensors(model: McuModel, fixed: FixedModel | None) -> list[ConstTensor]:
    """Every constant array the generated code reads, with its type and reads per inference."""
    out: list[ConstTensor] = []
    for name, w in model.weights.items():
        if fixed is None:
            out.append(ConstTensor(name, "f32", w.values.astype(np.float32), w.reads_per_inference))
            continue
        q = fixed.qweights[name]
        ctype = {np.dtype(np.int8): "i8", np.dtype(np.int16): "i16", np.dtype(np.int32): "i32"}[
            q.dtype
        ]
        out.append(ConstTensor(name, ctype, q, w.reads_per_inference))
    if fixed is not None:
        for i, table in sorted(fixed.tables.items()):
            s = model.steps[i]
            ctype = "u16" if s.op == "softmax" else "i8"
            reads = model.numel(s.output) / table.size * (2 if s.op == "softmax" else 1)
            out.append(ConstTensor(_table_name(i), ctype, table, reads))
    return out


def _table_name(i: int) -> str:
    return f"gr_table_{i}"


def _fmt_values(t: ConstTensor) -> str:
    flat = t.values.reshape(-1)
    if t.ctype == "f32":
        if not np.all(np.isfinite(flat)):
            raise PortError(f"weight {t.name} has non-finite values")
        items = [f"{float(v):.9g}f" for v in flat.astype(np.float32)]
        items = [s if ("." in s or "e" in s) else s[:-1] + ".0f" for s in items]
    elif t.ctype == "i32":
        items = [f"{int(v)}L" if int(v) != -(1 << 31) else "(-2147483647L - 1)" for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = []
    for k in range(0, len(items), 12):
        lines.append("    " + ", ".join(items[k : k + 12]))
    return ",\n".join(lines) if lines else "    0"


_PRELUDE = r"""
#if defined(__AVR__)
#include <avr/pgmspace.h>
#include <avr/eeprom.h>
#define GR_FLASH PROGMEM
#define GR_EEPROM __attribute__((section(".eeprom")))
#define GR_RD_FLASH_I8(p) ((int8_t)pgm_read_byte(p))
#define GR_RD_FLASH_I16(p) ((int16_t)pgm_read_word(p))
#define GR_RD_FLASH_U16(p) ((uint16_t)pgm_read_word(p))
#define GR_RD_FLASH_I32(p) ((int32_t)pgm_read_dword(p))
#define GR_RD_FLASH_F32(p) (pgm_read_float(p))
#define GR_RD_EEPROM_I8(p) ((int8_t)eeprom_read_byte((const uint8_t *)(p)))
#define GR_RD_EEPROM_I16(p) ((int16_t)eeprom_read_word((const uint16_t *)(p)))
#define GR_RD_EEPROM_U16(p) ((uint16_t)eeprom_read_word((const uint16_t *)(p)))
#define GR_RD_EEPROM_I32(p) ((int32_t)eeprom_read_dword((const uint32_t *)(p)))
#define GR_RD_EEPROM_F32(p) (eeprom_read_float((const float *)(p)))
#else
#define GR_FLASH
#define GR_EEPROM
#define GR_RD_FLASH_I8(p) (*(p))
#define GR_RD_FLASH_I16(p) (*(p))
#define GR_RD_FLASH_U16(p) (*(p))
#define GR_RD_FLASH_I32(p) (*(p))
#define GR_RD_FLASH_F32(p) (*(p))
#define GR_RD_EEPROM_I8(p) (*(p))
#define GR_RD_EEPROM_I16(p) (*(p))
#define GR_RD_EEPROM_U16(p) (*(p))
#define GR_RD_EEPROM_I32(p) (*(p))
#define GR_RD_EEPROM_F32(p) (*(p))
#endif
#define GR_RD_SRAM(p) (*(p))
"""


_EXT_READERS = r"""
#if defined(__AVR__)
/* External SPI memory (23LC1024-style serial SRAM on SPI0, selected by SS). */
#include <avr/io.h>
#if defined(__AVR_ATmega2560__) || defined(__AVR_ATmega1280__)
#define GR_SS PB0
#define GR_SCK PB1
#define GR_MOSI PB2
#else
#define GR_SS PB2
#define GR_MOSI PB3
#define GR_SCK PB5
#endif
static uint8_t gr_spi_ready;
static uint8_t gr_spi(uint8_t b) { SPDR = b; while (!(SPSR & (1 << SPIF))) {} return SPDR; }
static void gr_ext_read(uint32_t addr, uint8_t *dst, uint8_t n) {
    if (!gr_spi_ready) {
        DDRB |= (uint8_t)((1 << GR_SS) | (1 << GR_MOSI) | (1 << GR_SCK));
        PORTB |= (uint8_t)(1 << GR_SS);
        SPCR = (uint8_t)((1 << SPE) | (1 << MSTR));
        SPSR = (uint8_t)(1 << SPI2X);
        gr_spi_ready = 1;
    }
    PORTB &= (uint8_t)~(1 << GR_SS);
    gr_spi(0x03);
    gr_spi((uint8_t)(addr >> 16));
    gr_spi((uint8_t)(addr >> 8));
    gr_spi((uint8_t)addr);
    while (n--) *dst++ = gr_spi(0xFF);
    PORTB |= (uint8_t)(1 << GR_SS);
}
static int8_t gr_ext_i8(uint32_t a) { int8_t v; gr_ext_read(a, (uint8_t *)&v, 1); return v; }
static int16_t gr_ext_i16(uint32_t a) { int16_t v; gr_ext_read(a, (uint8_t *)&v, 2); return v; }
static uint16_t gr_ext_u16(uint32_t a) { uint16_t v; gr_ext_read(a, (uint8_t *)&v, 2); return v; }
static int32_t gr_ext_i32(uint32_t a) { int32_t v; gr_ext_read(a, (uint8_t *)&v, 4); return v; }
static float gr_ext_f32(uint32_t a) { float v; gr_ext_read(a, (uint8_t *)&v, 4); return v; }
#endif
"""


def external_layout(
    consts: list[ConstTensor], storage: StoragePlan
) -> tuple[dict[str, int], bytes]:
    """Addresses of the constants placed in external memory, and the memory's image."""
    addr: dict[str, int] = {}
    image = bytearray()
    np_types = {"f32": "<f4", "i8": "i1", "i16": "<i2", "i32": "<i4", "u16": "<u2"}
    for c in consts:
        if storage.medium_of(c.name) == "external":
            addr[c.name] = len(image)
            image += np.asarray(c.values).astype(np_types[c.ctype]).tobytes()
    return addr, bytes(image)


class _Gen:
    def __init__(
        self,
        model: McuModel,
        fixed: FixedModel | None,
        arena: ArenaPlan,
        storage: StoragePlan,
        consts: list[ConstTensor],
    ) -> None:
        self.ext_addr, _ = external_layout(consts, storage)
        self.m = model
        self.fx = fixed
        self.arena = arena
        self.storage = storage
        self.consts = {c.name: c for c in consts}
        self.act = "float" if fixed is None else "int8_t"
        biggest = max(
            [model.numel(t) for t in model.shapes] + [c.values.size for c in consts] + [1]
        )
        dims = [int(v) for s in model.steps for v in s.attrs.values() if isinstance(v, int)]
        self.wide = max([biggest, *dims]) >= 32000

    def acc(self, name: str) -> str:
        return f"GR_W_{name}"

    def ptr(self, tensor: str) -> str:
        return f"((gr_act *)(gr_arena.b + {self.arena.offset_of(tensor)}))"

    # ---- steps -----------------------------------------------------------------------
    def store(self, i: int, s: Step, acc: str = "acc") -> list[str]:
        relu = bool(s.attrs.get("relu"))
        if self.fx is None:
            return [
                f"y[__IDX__] = {acc} > 0.0f ? {acc} : 0.0f;" if relu else f"y[__IDX__] = {acc};"
            ]
        sh = self.fx.shifts[i][0]
        lines = []
        if sh > 0:
            lines.append(f"{acc} = ({acc} + {1 << (sh - 1)}L) >> {sh};")
        lo = "0" if relu else "-128"
        lines.append(f"y[__IDX__] = (int8_t)({acc} > 127 ? 127 : ({acc} < {lo} ? {lo} : {acc}));")
        return lines

    def mul(self, x: str, w: str) -> str:
        if self.fx is None:
            return f"{x} * {w}"
        if self.fx.weight_bits == 8:
            return f"(int16_t)((int16_t){x} * (int16_t){w})"
        return f"(int32_t){x} * (int32_t){w}"

    def step_dense(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        n, k = a["n"], a["k"]
        accty = "float" if self.fx is None else "int32_t"
        store = [ln.replace("__IDX__", "o") for ln in self.store(i, s)]
        return [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int o, k;",
            f"for (o = 0; o < {n}; ++o) {{",
            f"    const gr_int row = o * {k};",
            f"    {accty} acc = {self.acc(s.weights['b'])}(o);",
            f"    for (k = 0; k < {k}; ++k) acc += {self.mul('x[k]', self.acc(s.weights['w']) + '(row + k)')};",
            *["    " + ln for ln in store],
            "}",
        ]

    def step_conv(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        cg = a["c"] // a["group"]
        og = a["oc"] // a["group"]
        accty = "float" if self.fx is None else "int32_t"
        store = [
            ln.replace("__IDX__", f"(oc * {a['oh']} + oy) * {a['ow']} + ox")
            for ln in self.store(i, s)
        ]
        pad_y = a["pt"] > 0 or (a["oh"] - 1) * a["sh"] + (a["kh"] - 1) * a["dh"] >= a["h"]
        pad_x = a["pl"] > 0 or (a["ow"] - 1) * a["sw"] + (a["kw"] - 1) * a["dw"] >= a["w"]
        chk_y = f"            if (iy < 0 || iy >= {a['h']}) continue;" if pad_y else None
        chk_x = f"                if (ix < 0 || ix >= {a['w']}) continue;" if pad_x else None
        body = [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int oc, oy, ox, ic, ky, kx;",
            f"for (oc = 0; oc < {a['oc']}; ++oc) {{",
            f"  const gr_int c0 = (gr_int)(oc / {og}) * {cg};",
            f"  for (oy = 0; oy < {a['oh']}; ++oy) {{",
            f"    for (ox = 0; ox < {a['ow']}; ++ox) {{",
            f"      {accty} acc = {self.acc(s.weights['b'])}(oc);",
            f"      for (ic = 0; ic < {cg}; ++ic) {{",
            f"        for (ky = 0; ky < {a['kh']}; ++ky) {{",
            f"            const gr_int iy = oy * {a['sh']} - {a['pt']} + ky * {a['dh']};",
            chk_y,
            f"            for (kx = 0; kx < {a['kw']}; ++kx) {{",
            f"                const gr_int ix = ox * {a['sw']} - {a['pl']} + kx * {a['dw']};",
            chk_x,
            "                acc += "
            + self.mul(
                f"x[((c0 + ic) * {a['h']} + iy) * {a['w']} + ix]",
                f"{self.acc(s.weights['w'])}(((oc * {cg} + ic) * {a['kh']} + ky) * {a['kw']} + kx)",
            )
            + ";",
            "            }",
            "        }",
            "      }",
            *["      " + ln for ln in store],
            "    }",
            "  }",
            "}",
        ]
        return [ln for ln in body if ln is not None]

    def step_pool(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        is_max = s.op == "maxpool"
        fl = self.fx is None
        if is_max:
            init = "-3.402823466e+38f" if fl else "-128"
            acc_decl = f"gr_act m = {init};"
            tap = (
                f"{{ const gr_act v = x[(c * {a['h']} + iy) * {a['w']} + ix]; if (v > m) m = v; }}"
            )
            fin = f"y[(c * {a['oh']} + oy) * {a['ow']} + ox] = m;"
            cnt = []
        else:
            acc_decl = ("float m = 0.0f;" if fl else "int32_t m = 0;") + " gr_int n = 0;"
            tap = f"m += x[(c * {a['h']} + iy) * {a['w']} + ix];"
            dst = f"y[(c * {a['oh']} + oy) * {a['ow']} + ox]"
            fin = f"{dst} = m / (float)n;" if fl else f"{dst} = (gr_act)gr_div_round(m, n);"
            if a["count_pad"]:
                cnt = [f"if (iy < {a['h'] + a['pb']} && ix < {a['w'] + a['pr']}) ++n;"]
            else:
                cnt = []
        inside_count = "" if (is_max or a["count_pad"]) else " ++n;"
        return [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int c, oy, ox, ky, kx;",
            f"for (c = 0; c < {a['c']}; ++c) {{",
            f"  for (oy = 0; oy < {a['oh']}; ++oy) {{",
            f"    for (ox = 0; ox < {a['ow']}; ++ox) {{",
            f"      {acc_decl}",
            f"      for (ky = 0; ky < {a['kh']}; ++ky) {{",
            f"        const gr_int iy = oy * {a['sh']} - {a['pt']} + ky * {a['dh']};",
            f"        for (kx = 0; kx < {a['kw']}; ++kx) {{",
            f"          const gr_int ix = ox * {a['sw']} - {a['pl']} + kx * {a['dw']};",
            *["          " + ln for ln in cnt],
            f"          if (iy < 0 || iy >= {a['h']} || ix < 0 || ix >= {a['w']}) continue;",
            f"          {tap}{inside_count}",
            "        }",
            "      }",
            f"      {fin}",
            "    }",
            "  }",
            "}",
        ]

    def step_global(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        fl = self.fx is None
        if s.op == "gmaxpool":
            init = f"x[c * {a['hw']}]"
            upd = f"if (x[c * {a['hw']} + k] > m) m = x[c * {a['hw']} + k];"
            decl = f"gr_act m = {init};"
            fin = "y[c] = m;"
        else:
            decl = "float m = 0.0f;" if fl else "int32_t m = 0;"
            upd = f"m += x[c * {a['hw']} + k];"
            fin = (
                f"y[c] = m / {a['hw']}.0f;" if fl else f"y[c] = (gr_act)gr_div_round(m, {a['hw']});"
            )
        return [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int c, k;",
            f"for (c = 0; c < {a['c']}; ++c) {{",
            f"  {decl}",
            f"  for (k = 0; k < {a['hw']}; ++k) {upd}",
            f"  {fin}",
            "}",
        ]

    def step_unary(self, i: int, s: Step) -> list[str]:
        n = self.m.numel(s.output)
        if s.op == "relu":
            expr = "v > 0.0f ? v : 0.0f" if self.fx is None else "v > 0 ? v : 0"
        elif self.fx is not None:
            expr = f"{self.acc(_table_name(i))}((gr_int)v + 128)"
        elif s.op == "leakyrelu":
            expr = f"v > 0.0f ? v : v * {float(np.float32(s.attrs['alpha'])):.9g}f"
        elif s.op == "sigmoid":
            expr = "1.0f / (1.0f + expf(-v))"
        else:
            expr = "tanhf(v)"
        return [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int k;",
            f"for (k = 0; k < {n}; ++k) {{ const gr_act v = x[k]; y[k] = (gr_act)({expr}); }}",
        ]

    def step_softmax(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        inner = a["inner"]
        head = [
            f"const gr_act *x = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int o, k;",
            f"for (o = 0; o < {a['outer']}; ++o) {{",
            f"  const gr_act *z = x + o * {inner};",
            f"  gr_act *q = y + o * {inner};",
            "  gr_act m = z[0];",
            f"  for (k = 1; k < {inner}; ++k) if (z[k] > m) m = z[k];",
        ]
        if self.fx is None:
            body = [
                "  {",
                "    float sum = 0.0f;",
                f"    for (k = 0; k < {inner}; ++k) {{ const float e = expf(z[k] - m); q[k] = e; sum += e; }}",
                f"    for (k = 0; k < {inner}; ++k) q[k] = q[k] / sum;",
                "  }",
            ]
        else:
            t = self.acc(_table_name(i))
            body = [
                "  {",
                "    uint32_t sum = 0;",
                f"    for (k = 0; k < {inner}; ++k) {{ int16_t d = (int16_t)m - z[k]; if (d > 255) d = 255; sum += {t}(d); }}",
                f"    for (k = 0; k < {inner}; ++k) {{",
                "      int16_t d = (int16_t)m - z[k]; uint32_t v;",
                "      if (d > 255) d = 255;",
                f"      v = ((uint32_t){t}(d) * 128u + sum / 2u) / sum;",
                "      q[k] = (int8_t)(v > 127u ? 127u : v);",
                "    }",
                "  }",
            ]
        return [*head, *body, "}"]

    def step_add(self, i: int, s: Step) -> list[str]:
        n = self.m.numel(s.output)
        lines = [
            f"const gr_act *a = {self.ptr(s.inputs[0])};",
            f"gr_act *y = {self.ptr(s.output)};",
            "gr_int k;",
        ]
        if len(s.inputs) > 1:
            lines.insert(1, f"const gr_act *b = {self.ptr(s.inputs[1])};")
            other = "b[k]"
        else:
            other = f"{self.acc(s.weights['c'])}(k)"
        if self.fx is None:
            lines.append(f"for (k = 0; k < {n}; ++k) y[k] = a[k] + {other};")
            return lines
        sa, sb, sy = self.fx.shifts[i]
        ta = f"(int32_t)a[k] * {1 << sa}L" if sa else "(int32_t)a[k]"
        tb = f"(int32_t){other} * {1 << sb}L" if sb else f"(int32_t){other}"
        rnd = f" t = (t + {1 << (sy - 1)}L) >> {sy};" if sy else ""
        lines.append(
            f"for (k = 0; k < {n}; ++k) {{ int32_t t = {ta} + {tb};{rnd} "
            "y[k] = (int8_t)(t > 127 ? 127 : (t < -128 ? -128 : t)); }"
        )
        return lines

    def step_concat(self, i: int, s: Step) -> list[str]:
        a = s.attrs
        total = sum(a["chunks"])
        lines = [f"gr_act *y = {self.ptr(s.output)};", "gr_int o, k;"]
        off = 0
        for j, t in enumerate(s.inputs):
            lines.append(f"const gr_act *x{j} = {self.ptr(t)};")
        lines.append(f"for (o = 0; o < {a['outer']}; ++o) {{")
        for j, n in enumerate(a["chunks"]):
            sh = 0 if self.fx is None else self.fx.shifts[i][j]
            if sh:
                val = f"(gr_act)(((int16_t)x{j}[o * {n} + k] + {1 << (sh - 1)}) >> {sh})"
            else:
                val = f"x{j}[o * {n} + k]"
            lines.append(f"  for (k = 0; k < {n}; ++k) y[o * {total} + {off} + k] = {val};")
            off += n
        lines.append("}")
        return lines

    def step_code(self, i: int, s: Step) -> list[str]:
        if s.op == "dense":
            return self.step_dense(i, s)
        if s.op == "conv":
            return self.step_conv(i, s)
        if s.op in ("maxpool", "avgpool"):
            return self.step_pool(i, s)
        if s.op in ("gavgpool", "gmaxpool"):
            return self.step_global(i, s)
        if s.op in ("relu", "leakyrelu", "sigmoid", "tanh"):
            return self.step_unary(i, s)
        if s.op == "softmax":
            return self.step_softmax(i, s)
        if s.op == "add":
            return self.step_add(i, s)
        if s.op == "concat":
            return self.step_concat(i, s)
        raise AssertionError(s.op)

    # ---- files -----------------------------------------------------------------------
    def header(self, hname: str) -> str:
        p = self.m.name
        P = p.upper()
        n_in, n_out = self.m.numel(self.m.input), self.m.numel(self.m.output)
        eb = 4 if self.fx is None else 1
        lines = [
            f"/* {hname}: generated by graphrec port from {self.m.path.name}. Do not edit. */",
            f"#ifndef {P}_H",
            f"#define {P}_H",
            "",
            "#include <stdint.h>",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            "/* Usage: write " + f"{P}_INPUT_SIZE values to {p}_input(), call {p}_run(), read",
            f" * {P}_OUTPUT_SIZE values from {p}_output(). Both point into the model's static",
            " * arena (no malloc); the input is overwritten by later layers. */",
            f"#define {P}_FIXED_POINT {0 if self.fx is None else 1}",
            f"#define {P}_INPUT_SIZE {n_in}",
            f"#define {P}_OUTPUT_SIZE {n_out}",
            f"#define {P}_INPUT_BYTES {n_in * eb}",
            f"#define {P}_OUTPUT_BYTES {n_out * eb}",
            f"#define {P}_ARENA_BYTES {self.arena.size}",
        ]
        if self.fx is not None:
            lines += [
                "/* Fixed point: value = int8 * 2^-FRAC_BITS. Quantize inputs as",
                " * clamp(floor(x * 2^FRAC_BITS + 0.5), -128, 127). */",
                f"#define {P}_INPUT_FRAC_BITS {self.fx.input_frac}",
                f"#define {P}_OUTPUT_FRAC_BITS {self.fx.output_frac}",
                f"typedef int8_t {p}_value_t;",
            ]
        else:
            lines.append(f"typedef float {p}_value_t;")
        lines += [
            "",
            f"{p}_value_t *{p}_input(void);",
            f"const {p}_value_t *{p}_output(void);",
            f"void {p}_run(void);",
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            f"#endif /* {P}_H */",
            "",
        ]
        return "\n".join(lines)

    def source(self, hname: str, cname: str) -> str:
        p = self.m.name
        fl = self.fx is None
        mode = (
            "float"
            if self.fx is None
            else (f"fixed point (int8 activations, int{self.fx.weight_bits} weights)")
        )
        needs_libm = fl and any(s.op in ("sigmoid", "tanh", "softmax") for s in self.m.steps)
        out = [
            f"/* {cname}: generated by graphrec port from {self.m.path.name}. Do not edit.",
            f" * Mode: {mode}.",
            f" * Arena: {self.arena.size} bytes (naive sum {self.arena.naive}). */",
            f'#include "{hname}"',
            "#include <stdint.h>",
        ]
        if needs_libm:
            out.append("#include <math.h>")
        out.append(_PRELUDE)
        if not fl:
            out += [
                "#if ((-1) >> 1) != -1",
                '#error "the fixed-point code needs arithmetic right shifts of negative values"',
                "#endif",
            ]
        out.append(f"typedef {'int32_t' if self.wide else 'int16_t'} gr_int;")
        out.append(f"typedef {'float' if fl else 'int8_t'} gr_act;")
        if not fl and any(s.op in ("avgpool", "gavgpool") for s in self.m.steps):
            out += [
                "/* round(num / den) half up, den > 0: floor((2 num + den) / (2 den)). */",
                "static int32_t gr_div_round(int32_t num, int32_t den) {",
                "    const int32_t a = 2 * num + den, b = 2 * den;",
                "    int32_t q = a / b;",
                "    if ((a % b != 0) && (a < 0)) --q;",
                "    return q;",
                "}",
            ]
        out.append("")
        out.append("/* ---- constants, each bound to its medium through an accessor ---- */")
        if self.ext_addr:
            out.append(_EXT_READERS)
        for c in self.consts.values():
            medium = self.storage.medium_of(c.name)
            ct = _C_TYPES[c.ctype]
            if medium == "external":
                addr = self.ext_addr[c.name]
                out.append(
                    f"/* {c.name}: {c.values.size} x {ct} in external SPI memory at 0x{addr:06X} */"
                )
                out.append("#if defined(__AVR__)")
                out.append(
                    f"#define {self.acc(c.name)}(i) gr_ext_{c.ctype}({addr}UL + (uint32_t)(i) * {_ELEM_BYTES[c.ctype]}u)"
                )
                out.append("#else /* elsewhere the external image is an ordinary array */")
                out.append(f"static const {ct} gr_c_{c.name}[{max(1, c.values.size)}] = {{")
                out.append(_fmt_values(c))
                out.append("};")
                out.append(f"#define {self.acc(c.name)}(i) (gr_c_{c.name}[i])")
                out.append("#endif")
                continue
            qual = {
                "flash": "const {t} GR_FLASH",
                "sram": "const {t}",
                "eeprom": "const {t} GR_EEPROM",
            }[medium].format(t=ct)
            rd = {
                "flash": f"GR_RD_FLASH_{_RD_SUFFIX[c.ctype]}",
                "sram": "GR_RD_SRAM",
                "eeprom": f"GR_RD_EEPROM_{_RD_SUFFIX[c.ctype]}",
            }[medium]
            out.append(f"/* {c.name}: {c.values.size} x {ct} in {medium} ({c.bytes} bytes) */")
            out.append(f"static {qual} gr_c_{c.name}[{max(1, c.values.size)}] = {{")
            out.append(_fmt_values(c))
            out.append("};")
            out.append(f"#define {self.acc(c.name)}(i) {rd}(&gr_c_{c.name}[i])")
        out.append("")
        words = -(-self.arena.size // 4)
        out += [
            "/* ---- the arena: every activation, placed by liveness ---- */",
            f"static union {{ float f[{max(1, words)}]; int32_t i[{max(1, words)}]; "
            f"uint8_t b[{max(4, words * 4)}]; }} gr_arena;",
            "",
        ]
        for i, s in enumerate(self.m.steps):
            out.append(f"/* step {i}: {s.op} <- {', '.join(s.onnx_ops)} ({', '.join(s.nodes)}) */")
            out.append(f"static void gr_step_{i}(void) {{")
            out += ["    " + ln for ln in self.step_code(i, s)]
            out.append("}")
            out.append("")
        out += [
            f"{p}_value_t *{p}_input(void) {{ return {self.ptr(self.m.input)}; }}",
            f"const {p}_value_t *{p}_output(void) {{ return {self.ptr(self.m.output)}; }}",
            "",
            f"void {p}_run(void) {{",
            *[f"    gr_step_{i}();" for i in range(len(self.m.steps))],
            "}",
            "",
        ]
        return "\n".join(out)


def generate_c(
    model: McuModel,
    fixed: FixedModel | None,
    arena: ArenaPlan,
    storage: StoragePlan,
    consts: list[ConstTensor],
) -> CSource:
    """Generate ``<name>.h`` and ``<name>.c`` for ``model``.

    Args:
        model: The lowered model.
        fixed: Its fixed-point parameters (``None``: float mode).
        arena: The activation arena.
        storage: Where each constant lives.
        consts: The constants (from :func:`const_tensors`).
    """
    gen = _Gen(model, fixed, arena, storage, consts)
    hname, cname = f"{model.name}.h", f"{model.name}.c"
    return CSource(gen.header(hname), gen.source(hname, cname), hname, cname)
