from .acelle import Acelle
from .onecloud import OneCloud
from .onecrm import OneCrm

PRESETS = {preset.id: preset for preset in (OneCloud(), OneCrm(), Acelle())}
