"""Model families. Builders import Keras; `catalog` holds their metadata only."""
