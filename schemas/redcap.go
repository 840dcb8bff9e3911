package schemas

import (
	"fmt"
	"strconv"
	"time"
)

// Redcap holds the settings of the study's REDCap project (study key
// redcap), used when ingest splits a REDCap records export.
type Redcap struct {
	// MissingCodes are the project's missing-data codes (REDCap's
	// "Missing Data Codes" in the project's settings, e.g. UNK, NASK,
	// -999). A cell holding one becomes a blank, counted per column in
	// the trust's problem list (redcap_missing_code), never a value. No
	// code may be a valid answer of any field.
	MissingCodes []string `yaml:"missing_codes"`
}

// maxMissingCodes bounds redcap.missing_codes.
const maxMissingCodes = 64

// validMissingCode is the alphabet of a missing-data code: 1 to 32
// printable ASCII characters, none a comma, quote, pipe or space (REDCap
// writes them in its raw export as they are).
func validMissingCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\'' || c == '|' {
			return false
		}
	}
	return true
}

// checkRedcap checks redcap.missing_codes against the participants
// export's fields (resolved: instruments and demographics known): a code
// that a field could hold as an answer (a code of a coded field, an
// integer in an integer field's range, a date) would turn answers into
// blanks, so it is refused.
func (s *Study) checkRedcap(c checker) error {
	if err := c.codes(s.Redcap.MissingCodes, "missing-data code", validMissingCode, "1 to 32 printable characters without spaces, commas, quotes or |", 0, maxMissingCodes, "redcap", "missing_codes"); err != nil {
		return err
	}
	for i, code := range s.Redcap.MissingCodes {
		if f, ok := s.missingCodeAnswers(code); ok {
			return c.fail(fmt.Sprintf("missing-data code %s is a valid answer of %s: a missing-data code must be no field's answer", quote(code), f), "redcap", "missing_codes", i)
		}
	}
	return nil
}

// missingCodeAnswers reports a participants field that could hold code as
// an answer.
func (s *Study) missingCodeAnswers(code string) (string, bool) {
	n, intErr := strconv.Atoi(code)
	for _, f := range s.ExportFields(KindParticipants) {
		switch f.Type {
		case FieldCode:
			for _, v := range f.Codes {
				if v == code {
					return f.Name, true
				}
			}
		case FieldInt:
			if intErr == nil && n >= f.Min && n <= f.Max {
				return f.Name, true
			}
		case FieldDate:
			if _, err := time.Parse("2006-01-02", code); err == nil {
				return f.Name, true
			}
		}
	}
	return "", false
}
