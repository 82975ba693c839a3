"""What the apps share below them all: the vendor's business calendar.

Not a Django app: no models, no settings of its own beyond reading Django's.
"""
