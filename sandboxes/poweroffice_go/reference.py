"""Code lists PowerOffice Go checks: ISO 3166-1 alpha-2 countries, ISO 4217 currencies and the API's enums."""
from __future__ import annotations

from sandboxes.common.iso import COUNTRY_CODES  # noqa: F401  (re-exported: the store checks reference.COUNTRY_CODES)

# ISO 4217 active currency codes.
CURRENCY_CODES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF
CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG
HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())

INVOICE_DELIVERY_TYPES = ("PdfByEmail", "Print", "EHF", "AvtaleGiro", "External", "Efaktura", "Factoring")
REMINDER_DELIVERY_TYPES = ("PdfByEmail", "Print")
ORDER_STATUSES = ("Draft", "Confirmed")
LINE_TYPES = ("Normal", "Text", "Summary", "InvoiceFee", "TotalHours")
SEND_DELIVERY_TYPES = ("PdfByEmail", "PdfPrintForDownload", "Auto")
VAT_RETURN_SPECIFICATIONS = ("None", "Adjustment", "LossesOnClaims", "ReversalOfInputValueAddedTax", "Withdrawals",
                             "AdjustmentVatCompensationRealProperty", "PurchasesEligibleForCompensation")
UNITS_OF_MEASURE = tuple("""
BX MTR KMT KGM EA LTR HUR DAY MTK MTQ TNE MON ANN QAN NL XRO XBA XPL XPC PR XCI XBG SET XTY XOF FTK KWH MWH LBR CMT
DMT LM XPK GRM HGM XFL XBE E54 MMT DAA H18 MLT HLT DLT AK XCR E14 MJ J57 XJG XCT XSA XTU WEE XCA XCN NAR M4 XVQ P1
MFU KMK LM3 FOT FM3 E34 E35
""".split())

# Norwegian standard outgoing VAT (code 3, 25 %) and the VAT-free domestic code (5), as Go's defaults use.
STANDARD_VAT = {"VatId": 3, "VatCode": "3", "VatRate": 0.25}
NO_VAT = {"VatId": 5, "VatCode": "5", "VatRate": 0.0}
