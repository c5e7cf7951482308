"""The data floor: the datasets (one definition each, with their quirks), the released
format read and written, recordings and videos turned into it, the built-in demo. Builds on
utils/foundation/ only; knows nothing of models/."""
