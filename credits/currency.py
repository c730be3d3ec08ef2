"""How many decimals a currency's smallest unit has, as payment gateways count them.

Stripe takes amounts in the currency's minor unit: cents for USD (``0.02`` → ``2``), paise for
INR, but whole units for zero-decimal currencies (``¥150`` → ``150``) and thousandths for the
three-decimal ones. A price of one credit must be a whole number of minor units, or no gateway
can charge it exactly.
"""

from decimal import Decimal

#: https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
#: https://docs.stripe.com/currencies#three-decimal
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def minor_unit_exponent(currency: str) -> int:
    """Decimals of ``currency``'s smallest unit: 0 for JPY, 3 for KWD, 2 for everything else."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in ``currency``'s minor unit (``Decimal("0.02"), "USD"`` → ``2``).

    Raises ValueError when the amount is finer than the minor unit (``Decimal("1.5"), "JPY"``):
    rounding a price silently would charge something else than what the buyer was shown.
    """
    scaled = amount.scaleb(minor_unit_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of the currency's smallest unit.")
    return int(scaled)
