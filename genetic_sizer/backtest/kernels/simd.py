"""Explicit SIMD vectors of doubles for the compiled kernels: ``W`` lanes held in one LLVM vector ``<W x double>``.

LLVM vectorizes a loop over the lanes only where it can prove the arrays it reads and writes do not overlap; across a
kernel's scratch rows and inputs it cannot (Numba marks no array as ``noalias``), and per-bar loops of 8 lanes are
then compiled to checks and scalar code. These types make the lanes values instead of memory: a kernel loads a row of
``W`` doubles into a vector (:func:`vload`), computes with the usual operators, and the state it carries from bar to
bar stays in registers. Every operation is the IEEE operation of each lane (no fast-math flags: ``a + b``, ``a / b``
round exactly as the scalar ones), comparisons follow Numba's scalar ones (``<``, ``<=``, ``>``, ``>=``, ``==``
ordered, ``!=`` unordered: true for NaN), and :func:`vmin` is Numba's ``min(a, b)`` (``b if b < a else a``), so a lane
computes bit for bit what the scalar code computes.

Vectors (``VecType``) mix with scalars (a scalar stands for the vector of its copies) and negate as Numba's scalars do
(``-0.0 - x``); comparisons give masks (``MaskType``: ``&``, ``|``, ``^``, ``~``); :func:`vsel` is the select ``a if m
else b`` lane by lane; :func:`vany` tells whether any lane of a mask is set and :func:`vbits` gives its lanes as the
bits of an integer; :func:`vabs` and :func:`vmax` are Numba's ``abs`` and ``max``. :func:`vload` and :func:`vstore`
read and write the first lanes of a row; :func:`vloadat` and :func:`vstoreat` the lanes from any element of a
C-contiguous array (the lanes its innermost axis). ``W`` is a compile-time constant (an integer literal: a module
constant).
"""

from __future__ import annotations

import operator

from llvmlite import ir
from numba.extending import intrinsic, models, overload, register_model, types

__all__ = [
    "MaskType",
    "VecType",
    "vabs",
    "vany",
    "vbits",
    "vget",
    "vload",
    "vloadat",
    "vmax",
    "vmin",
    "vsel",
    "vsplat",
    "vstore",
    "vstoreat",
]


class VecType(types.Type):
    """``width`` doubles (an LLVM ``<width x double>``)."""

    def __init__(self, width):
        self.width = width
        super().__init__(name=f"f64x{width}")


class MaskType(types.Type):
    """``width`` booleans (an LLVM ``<width x i1>``), the result of comparing vectors."""

    def __init__(self, width):
        self.width = width
        super().__init__(name=f"b1x{width}")


@register_model(VecType)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.DoubleType(), fe_type.width))


@register_model(MaskType)
class _MaskModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.IntType(1), fe_type.width))


def _row(ty):
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.float64 and ty.layout == "C"


@intrinsic
def vload(typingctx, row, width):
    """The first ``width`` doubles of a contiguous row (the caller guarantees it holds them)."""
    if not (_row(row) and isinstance(width, types.IntegerLiteral)):
        return None
    vt = VecType(width.literal_value)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(data, ir.PointerType(ir.VectorType(ir.DoubleType(), vt.width)))
        return builder.load(ptr, align=8)

    return vt(row, width), codegen


@intrinsic
def vstore(typingctx, row, vec):
    """Store ``vec`` into the first lanes of a contiguous row (the caller guarantees it holds them)."""
    if not (_row(row) and isinstance(vec, VecType)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(data, ir.PointerType(ir.VectorType(ir.DoubleType(), sig.args[1].width)))
        builder.store(args[1], ptr, align=8)
        return context.get_dummy_value()

    return types.none(row, vec), codegen


def _splat(builder, x, width):
    vt = ir.VectorType(x.type, width)
    one = builder.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(
        one, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    )


@intrinsic
def vsplat(typingctx, x, like):
    """The vector of ``width`` copies of the float ``x``; ``like`` is a vector of that width or the width (literal)."""
    if isinstance(like, VecType):
        width = like.width
    elif isinstance(like, types.IntegerLiteral):
        width = like.literal_value
    else:
        return None
    if not isinstance(x, types.Float):
        return None
    vt = VecType(width)

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[0], sig.args[0], types.float64)
        return _splat(builder, value, width)

    return vt(x, like), codegen


@intrinsic
def vget(typingctx, vec, lane):
    """Lane ``lane`` of a vector, a float."""
    if not (isinstance(vec, VecType) and isinstance(lane, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        index = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.extract_element(args[0], index)

    return types.float64(vec, lane), codegen


@intrinsic
def vsel(typingctx, mask, a, b):
    """``a if mask else b``, lane by lane (scalars stand for vectors of their copies)."""
    if not (isinstance(mask, MaskType) and isinstance(a, VecType) and a == b and a.width == mask.width):
        return None

    def codegen(context, builder, sig, args):
        return builder.select(args[0], args[1], args[2])

    return a(mask, a, b), codegen


@intrinsic
def vany(typingctx, mask):
    """Whether some lane of ``mask`` is set."""
    if not isinstance(mask, MaskType):
        return None

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(args[0], ir.IntType(sig.args[0].width))
        return builder.icmp_unsigned("!=", bits, ir.Constant(bits.type, 0))

    return types.boolean(mask), codegen


def _vv_intrinsic(emit, result):
    """An intrinsic of two vectors of one width; ``result(vec_type)`` is its type."""

    @intrinsic
    def fn(typingctx, a, b):
        if not (isinstance(a, VecType) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, args[0], args[1])

        return result(a)(a, b), codegen

    return fn


def _scalar(ty):
    return isinstance(ty, (types.Float, types.Integer))


def _overload_binary(op, fn):
    @overload(op)
    def _ol(a, b):
        if isinstance(a, VecType) and isinstance(b, VecType):
            return lambda a, b: fn(a, b)
        if isinstance(a, VecType) and _scalar(b):
            return lambda a, b: fn(a, vsplat(float(b), a))
        if _scalar(a) and isinstance(b, VecType):
            return lambda a, b: fn(vsplat(float(a), b), b)
        return None


def _mask_of(vt):
    return MaskType(vt.width)


_ARITH = {
    operator.add: lambda b, x, y: b.fadd(x, y),
    operator.sub: lambda b, x, y: b.fsub(x, y),
    operator.mul: lambda b, x, y: b.fmul(x, y),
    operator.truediv: lambda b, x, y: b.fdiv(x, y),
}
_COMPARE = {  # Numba's scalar float comparisons: ordered, but != is unordered (true for NaN)
    operator.lt: lambda b, x, y: b.fcmp_ordered("<", x, y),
    operator.le: lambda b, x, y: b.fcmp_ordered("<=", x, y),
    operator.gt: lambda b, x, y: b.fcmp_ordered(">", x, y),
    operator.ge: lambda b, x, y: b.fcmp_ordered(">=", x, y),
    operator.eq: lambda b, x, y: b.fcmp_ordered("==", x, y),
    operator.ne: lambda b, x, y: b.fcmp_unordered("!=", x, y),
}
for _op, _emit in _ARITH.items():
    _overload_binary(_op, _vv_intrinsic(_emit, lambda vt: vt))
for _op, _emit in _COMPARE.items():
    _overload_binary(_op, _vv_intrinsic(_emit, _mask_of))


def _mask_intrinsic(emit):
    @intrinsic
    def fn(typingctx, a, b):
        if not (isinstance(a, MaskType) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return emit(builder, args[0], args[1])

        return a(a, b), codegen

    return fn


def _overload_mask(op, fn):
    @overload(op)
    def _ol(a, b):
        if isinstance(a, MaskType) and a == b:
            return lambda a, b: fn(a, b)
        return None


_overload_mask(operator.and_, _mask_intrinsic(lambda b, x, y: b.and_(x, y)))
_overload_mask(operator.or_, _mask_intrinsic(lambda b, x, y: b.or_(x, y)))


@intrinsic
def _mask_not(typingctx, a):
    if not isinstance(a, MaskType):
        return None

    def codegen(context, builder, sig, args):
        return builder.not_(args[0])

    return a(a), codegen


@overload(operator.invert)
def _ol_invert(a):
    if isinstance(a, MaskType):
        return lambda a: _mask_not(a)
    return None


def _chooser(op: str):
    """An intrinsic taking, lane by lane, ``b`` where ``b op a`` (an ordered comparison: false with a NaN) and ``a``
    elsewhere: Numba's ``min`` with ``"<"``, its ``max`` with ``">"``."""

    @intrinsic
    def choose(typingctx, a, b):
        if not (isinstance(a, VecType) and a == b):
            return None

        def codegen(context, builder, sig, args):
            pick = builder.fcmp_ordered(op, args[1], args[0])
            return builder.select(pick, args[1], args[0])

        return a(a, b), codegen

    return choose


def _overload_chooser(fn, choose) -> None:
    """``fn(a, b)`` on two vectors, or a vector and a scalar (splat to the vector's width) either way, as ``choose``."""

    @overload(fn)
    def _ol(a, b):
        if isinstance(a, VecType) and isinstance(b, VecType):
            return lambda a, b: choose(a, b)
        if isinstance(a, VecType) and _scalar(b):
            return lambda a, b: choose(a, vsplat(float(b), a))
        if _scalar(a) and isinstance(b, VecType):
            return lambda a, b: choose(vsplat(float(a), b), b)
        return None


_vmin = _chooser("<")
_vmax = _chooser(">")


def vmin(a, b):
    """Numba's ``min(a, b)`` lane by lane: ``b if b < a else a`` (so a NaN in ``b`` gives ``a``)."""
    raise NotImplementedError("vmin is compiled only")


_overload_chooser(vmin, _vmin)


def _lane_array(ty):
    return isinstance(ty, types.Array) and ty.dtype == types.float64 and ty.layout == "C"


def _index_ok(ary, index):
    if isinstance(index, types.Integer):
        return ary.ndim == 1
    return (
        isinstance(index, types.BaseTuple)
        and len(index) == ary.ndim
        and all(isinstance(t, types.Integer) for t in index.types)
    )


def _element_pointer(context, builder, aryty, ary, indexty, index, width):
    """A pointer to ``width`` doubles from element ``index`` (an integer or a tuple) of a C-contiguous array."""
    from numba.core import cgutils

    arr = context.make_array(aryty)(context, builder, ary)
    if isinstance(indexty, types.Integer):
        inds = [context.cast(builder, index, indexty, types.intp)]
    else:
        inds = [
            context.cast(builder, builder.extract_value(index, j), indexty.types[j], types.intp)
            for j in range(len(indexty))
        ]
    ptr = cgutils.get_item_pointer(context, builder, aryty, arr, inds, wraparound=False)
    return builder.bitcast(ptr, ir.PointerType(ir.VectorType(ir.DoubleType(), width)))


@intrinsic
def vloadat(typingctx, ary, index, width):
    """The ``width`` doubles from element ``index`` of a C-contiguous float64 array on (``index``: an integer for a row,
    a tuple of one integer per axis otherwise; the lanes are the innermost axis). No bounds check: the caller
    guarantees the array holds them."""
    if not (_lane_array(ary) and _index_ok(ary, index) and isinstance(width, types.IntegerLiteral)):
        return None
    vt = VecType(width.literal_value)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1], vt.width)
        return builder.load(ptr, align=8)

    return vt(ary, index, width), codegen


@intrinsic
def vstoreat(typingctx, ary, index, vec):
    """Store ``vec`` into the ``width`` doubles from element ``index`` of a C-contiguous float64 array (as
    :func:`vloadat`)."""
    if not (_lane_array(ary) and _index_ok(ary, index) and isinstance(vec, VecType)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1], sig.args[2].width)
        builder.store(args[2], ptr, align=8)
        return context.get_dummy_value()

    return types.none(ary, index, vec), codegen


@intrinsic
def _vneg(typingctx, a):
    if not isinstance(a, VecType):
        return None

    def codegen(context, builder, sig, args):  # Numba's scalar negation: -0.0 - x (a NaN keeps its sign)
        return builder.fsub(_splat(builder, ir.Constant(ir.DoubleType(), -0.0), sig.args[0].width), args[0])

    return a(a), codegen


@overload(operator.neg)
def _ol_neg(a):
    if isinstance(a, VecType):
        return lambda a: _vneg(a)
    return None


@intrinsic
def _vabs(typingctx, a):
    if not isinstance(a, VecType):
        return None

    def codegen(context, builder, sig, args):  # Numba's abs of a float: llvm.fabs
        vt = ir.VectorType(ir.DoubleType(), sig.args[0].width)
        fn = builder.module.declare_intrinsic(f"llvm.fabs.v{vt.count}f64", fnty=ir.FunctionType(vt, [vt]))
        return builder.call(fn, [args[0]])

    return a(a), codegen


def vabs(a):
    """``abs(a)`` lane by lane (Numba's: ``llvm.fabs``)."""
    raise NotImplementedError("vabs is compiled only")


@overload(vabs)
def _ol_vabs(a):
    if isinstance(a, VecType):
        return lambda a: _vabs(a)
    return None


def vmax(a, b):
    """Numba's ``max(a, b)`` lane by lane: ``b if b > a else a`` (so a NaN in ``b`` gives ``a``)."""
    raise NotImplementedError("vmax is compiled only")


_overload_chooser(vmax, _vmax)


_overload_mask(operator.xor, _mask_intrinsic(lambda b, x, y: b.xor(x, y)))


@intrinsic
def vbits(typingctx, mask):
    """The lanes of ``mask`` as the bits of an integer (lane ``l`` is bit ``l``)."""
    if not isinstance(mask, MaskType):
        return None

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(args[0], ir.IntType(sig.args[0].width))
        return builder.zext(bits, ir.IntType(64))

    return types.int64(mask), codegen
