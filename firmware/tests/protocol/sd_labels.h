/* TEST STUB of the generated sd_labels.h (convert/firmware_gen.py): twelve
 * labels, not FSDD's ten, so the protocol tests run with another output count. */
#ifndef SD_LABELS_H
#define SD_LABELS_H

#define SD_LABEL_COUNT 12
#define SD_LABELS_SHA256 "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c"
#define SD_LABEL_REPORTABLE_MASK 0x3FFu
#define SD_LABEL_NAMES {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "noise", "other"}

#endif /* SD_LABELS_H */
