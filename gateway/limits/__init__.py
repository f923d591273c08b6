"""Rate limits (requests and tokens per minute) and spend budgets, per key and per tenant.

admission.py checks and reserves everything that applies to a request in one Redis round
trip (admit.lua) and settles it once the real usage is known (settle.lua); budgets.py owns
periods, messages and the worker's reconciliation with the database (land.lua). A request
whose key and tenant have no limits never touches Redis here.
"""

from gateway.limits.admission import Admission, Demand, admit, settle

__all__ = ["Admission", "Demand", "admit", "settle"]
