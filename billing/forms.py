from django import forms


class SeatChangeForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=100_000, label="Seats")
